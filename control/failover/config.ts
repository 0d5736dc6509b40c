import { z } from 'zod';
import { int } from '../../core/config.ts';

/** Regions and failover keys (spread into the service's schema by cli/config.ts; see README.md beside). */
export const failoverConfigShape = {
  /** JSON array of {name, role: primary|secondary, base_url, health_url, replication_lag_url?}. */
  FAILOVER_REGIONS: z.string().optional(),
  FAILOVER_CHECK_INTERVAL_SECONDS: int(30),
  FAILOVER_CHECK_TIMEOUT_MS: int(5_000),
  FAILOVER_UNHEALTHY_AFTER: int(3),
  FAILOVER_HEALTHY_AFTER: int(2),
  FAILOVER_AUTO: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  FAILOVER_STEP_SECONDS: int(30),
  FAILOVER_LEASE_SECONDS: int(15),
  /** Most time a cutover waits for the regions' background queues to drain before it is aborted. */
  FAILOVER_DRAIN_TIMEOUT_SECONDS: int(120),
  /** Recovery objectives every drill, game day and real cutover is judged against (Phase 6: 15 min, 5 min). */
  FAILOVER_RTO_TARGET_SECONDS: z.coerce.number().positive().default(900),
  FAILOVER_RPO_TARGET_SECONDS: z.coerce.number().positive().default(300),
  /** Post-cutover integrity checks: when the "after" figures are read, and what they may differ by. */
  FAILOVER_INTEGRITY_SETTLE_SECONDS: z.coerce.number().int().min(0).default(60),
  FAILOVER_INTEGRITY_MAX_QUEUE_GROWTH: z.coerce.number().int().min(0).default(100),
  FAILOVER_INTEGRITY_MAX_ERROR_RATE_INCREASE: z.coerce.number().min(0).max(1).default(0.02),
};

export type FailoverKeys = z.infer<z.ZodObject<typeof failoverConfigShape>>;
