import { z } from 'zod';

/** Evidence-export settings; spread into core/config.ts's schema (`...evidenceConfigShape`). */
export const evidenceConfigShape = {
  /** Base URL of the Prometheus whose data the dashboard snapshots embed. */
  PROMETHEUS_URL: z.string().url().optional(),
  /** HMAC-SHA256 key that signs manifest.json; export refuses to run without it. */
  EVIDENCE_SIGNING_KEY: z.string().min(32, 'at least 32 characters').optional(),
};

export const MIN_SIGNING_KEY_LENGTH = 32;

/** A key that is missing or too short stops export and verify with a message naming the variable. */
export function requireSigningKey(key: string | undefined | null): string {
  if (!key) throw new Error('EVIDENCE_SIGNING_KEY is not set: evidence bundles must be signed (at least 32 characters)');
  if (key.length < MIN_SIGNING_KEY_LENGTH) {
    throw new Error(`EVIDENCE_SIGNING_KEY is too short: at least ${MIN_SIGNING_KEY_LENGTH} characters`);
  }
  return key;
}
