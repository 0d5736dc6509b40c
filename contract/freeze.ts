import { z } from 'zod';
import { acceptingOldNames, Timestamp } from './common.ts';

/** /api/freeze: the release freeze (error-budget policy on GitHub). */

export const MAX_OVERRIDE_HOURS = 24;

/** Every cause `GET /api/freeze` can report, strongest alert-driven cause first after manual/override. */
export const FREEZE_CAUSES = [
  'none',
  'active_region_down',
  'release_gate',
  'error_budget',
  'slo_page',
  'quiet_period',
  'manual',
  'override',
] as const;
export const FreezeCause = z.enum(FREEZE_CAUSES);
export type FreezeCause = z.infer<typeof FreezeCause>;

const reason = z.string().trim().min(3, 'must be at least 3 characters: say why').max(500);
// A time is an ISO 8601 string; a missing one falls through to the shared "is required".
const isoTime = z
  .string({
    error: (issue) => (issue.input === undefined ? undefined : 'must be an ISO 8601 time, e.g. 2026-12-01T18:00:00Z'),
  })
  .pipe(z.coerce.date({ error: 'must be an ISO 8601 time, e.g. 2026-12-01T18:00:00Z' }));
const future = isoTime.refine((d) => d.getTime() > Date.now(), 'must be in the future');

/** POST /api/freeze/freezes (`expires_at` accepted). */
export const FreezeBody = acceptingOldNames(z.object({ reason, expiresAt: future.optional() }).strict(), {
  expires_at: 'expiresAt',
});
export type FreezeBody = z.input<typeof FreezeBody>;

/** POST /api/freeze/overrides (`expires_at` accepted): an override always ends, at most 24 h ahead. */
export const OverrideBody = acceptingOldNames(
  z
    .object({
      reason,
      expiresAt: future.refine(
        (d) => d.getTime() <= Date.now() + MAX_OVERRIDE_HOURS * 3_600_000,
        `at most ${MAX_OVERRIDE_HOURS} h ahead`
      ),
    })
    .strict(),
  { expires_at: 'expiresAt' }
);
export type OverrideBody = z.input<typeof OverrideBody>;

/** DELETE /api/freeze/freezes/:id and /api/freeze/overrides/:id. */
export const EndFreezeBody = z.object({ reason: reason.optional() }).strict();
export type EndFreezeBody = z.input<typeof EndFreezeBody>;

export const FreezeAction = z.object({
  id: z.string(),
  kind: z.enum(['freeze', 'override']),
  reason: z.string(),
  actor: z.string(),
  createdAt: Timestamp,
  expiresAt: Timestamp.nullable(),
});
export type FreezeAction = z.infer<typeof FreezeAction>;

export const FreezeTrigger = z.object({
  alertname: z.string(),
  slo: z.string().nullable(),
  severity: z.string().nullable(),
  firing: z.boolean(),
  startedAt: Timestamp,
  resolvedAt: Timestamp.nullable(),
  /** The alert's labels as Prometheus has them (names unchanged). */
  labels: z.record(z.string(), z.string()),
});
export type FreezeTrigger = z.infer<typeof FreezeTrigger>;

/** GET /api/freeze. */
export const FreezeState = z.object({
  frozen: z.boolean(),
  cause: FreezeCause,
  reason: z.string(),
  /** When the published state last changed; null until the sync job has published the current one. */
  since: Timestamp.nullable(),
  triggers: z.array(FreezeTrigger),
  manualFreezes: z.array(FreezeAction),
  override: FreezeAction.nullable(),
  nextChangeAt: Timestamp.nullable(),
  quietPeriodSeconds: z.number(),
  /** PR labels that exempt a change from the freeze. */
  exceptionLabels: z.array(z.string()),
});
export type FreezeState = z.infer<typeof FreezeState>;

/** DELETE answers. */
export const FreezeEnded = z.object({ id: z.string(), ended: z.literal(true) });
export type FreezeEnded = z.infer<typeof FreezeEnded>;
