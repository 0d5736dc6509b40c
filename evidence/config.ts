import { z } from 'zod';

/** Evidence-export settings; spread into the service's schema by cli/config.ts (`...evidenceConfigShape`). */
export const evidenceConfigShape = {
  /** Base URL of the Prometheus whose data the dashboard snapshots embed. */
  PROMETHEUS_URL: z.string().url().optional(),
  /** HMAC-SHA256 key that signs manifest.json; export refuses to run without it. */
  EVIDENCE_SIGNING_KEY: z.string().min(32, 'at least 32 characters').optional(),
  /** Where the weekly queue job writes its bundles; unset = no scheduled export (the command still works). */
  EVIDENCE_DIR: z.string().min(1).optional(),
  /** When the weekly bundle is written: "<Mon..Sun> HH:MM" in UTC, or "off". */
  EVIDENCE_SCHEDULE: z
    .string()
    .regex(
      /^(off|(mon|tue|wed|thu|fri|sat|sun)[a-z]* ([01]\d|2[0-3]):[0-5]\d)$/i,
      'a weekday and a UTC time such as "Mon 02:00", or "off"'
    )
    .default('Mon 02:00'),
  /** Bundles whose period ended longer ago than this are deleted (longer than a SOC 2 Type II window). */
  EVIDENCE_RETENTION_DAYS: z.coerce.number().int().positive().default(400),
  /** Dashboards the weekly bundle snapshots (comma-separated uids). */
  EVIDENCE_DASHBOARDS: z
    .string()
    .regex(/^[\w-]+(,[\w-]+)*$/, 'comma-separated dashboard uids')
    .default(
      'controlroom-slo,controlroom-self,controlroom-executive,controlroom-usage,controlroom-regions,controlroom-incidents,controlroom-pricing'
    ),
};

export type EvidenceConfig = z.infer<z.ZodObject<typeof evidenceConfigShape>>;

export const MIN_SIGNING_KEY_LENGTH = 32;

/** A key that is missing or too short stops export and verify with a message naming the variable. */
export function requireSigningKey(key: string | undefined | null): string {
  if (!key)
    throw new Error('EVIDENCE_SIGNING_KEY is not set: evidence bundles must be signed (at least 32 characters)');
  if (key.length < MIN_SIGNING_KEY_LENGTH) {
    throw new Error(`EVIDENCE_SIGNING_KEY is too short: at least ${MIN_SIGNING_KEY_LENGTH} characters`);
  }
  return key;
}
