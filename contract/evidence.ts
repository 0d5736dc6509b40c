import { z } from 'zod';
import { Timestamp } from './common.ts';

/** GET /api/evidence[?limit=N]: the scheduled evidence bundles, newest first. */

export const EvidenceBundle = z.object({
  id: z.string(),
  /** The schedule slot the bundle is for. */
  slot: Timestamp,
  periodFrom: Timestamp,
  periodTo: Timestamp,
  dir: z.string(),
  status: z.enum(['running', 'verified', 'failed', 'pruned']),
  attempts: z.number(),
  files: z.number().nullable(),
  manifestSha256: z.string().nullable(),
  error: z.string().nullable(),
  startedAt: Timestamp,
  finishedAt: Timestamp.nullable(),
  prunedAt: Timestamp.nullable(),
});
export type EvidenceBundle = z.infer<typeof EvidenceBundle>;

export const EvidenceList = z.object({
  schedule: z.object({
    enabled: z.boolean(),
    schedule: z.string(),
    timezone: z.literal('UTC'),
    dir: z.string().nullable(),
    retentionDays: z.number(),
    nextRunAt: Timestamp.nullable(),
    s3Upload: z.string(),
  }),
  bundles: z.array(EvidenceBundle),
});
export type EvidenceList = z.infer<typeof EvidenceList>;
