import { z } from 'zod';
import type { SharedConfig } from '../../core/config.ts';
import type { FailoverKeys } from './config.ts';

/** The scope GET /api/regions/routing serves; drills run in their own scope ('drill-<id>'). */
export const LIVE_SCOPE = 'live';
export const DEFAULT_STEPS: readonly number[] = [10, 50, 100];
/** Actor of everything the control plane does by itself (health transitions, automatic failover, steps). */
export const SYSTEM_ACTOR = 'controlroom:failover';

export interface RegionSpec {
  name: string;
  role: 'primary' | 'secondary';
  base_url: string;
  health_url: string;
  replication_lag_url?: string | undefined;
  /** POSTed to pause the region's background jobs before the write role moves (idempotent on the TMS side). */
  pause_url?: string | undefined;
  /** POSTed to resume them once the cutover has ended (completed or aborted). */
  resume_url?: string | undefined;
  /** GET: the region's background queue depth ({"queued": n, "running": m}, {"depth": n} or a number). Without
   * it the TMS's agent_tasks queued + running count stands for the region's queue. */
  queue_depth_url?: string | undefined;
}

/** The regions without FAILOVER_REGIONS. `controlroom start` serves them with the demo's stand-ins
 * (db/demo/regions.ts); anywhere else nothing listens there, so both fail their checks and automatic
 * failover never acts (it needs the other region healthy). */
export const DEFAULT_REGIONS: readonly RegionSpec[] = [18481, 18482].map((port, i) => {
  const base = `http://127.0.0.1:${port}`;
  return {
    name: i === 0 ? 'us-east-1' : 'us-west-2',
    role: i === 0 ? 'primary' : 'secondary',
    base_url: base,
    health_url: `${base}/healthz`,
    pause_url: `${base}/jobs/pause`,
    resume_url: `${base}/jobs/resume`,
    queue_depth_url: `${base}/jobs/queue`,
  } satisfies RegionSpec;
});

const httpUrl = z
  .string()
  .url('must be an absolute URL')
  .refine((u) => /^https?:\/\//i.test(u), 'must be an http:// or https:// URL');

const regionSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'letters, digits, dot, dash, underscore (at most 63)'),
    role: z.enum(['primary', 'secondary']),
    base_url: httpUrl,
    health_url: httpUrl,
    replication_lag_url: httpUrl.optional(),
    pause_url: httpUrl.optional(),
    resume_url: httpUrl.optional(),
    queue_depth_url: httpUrl.optional(),
  })
  .strict();

const regionsSchema = z
  .array(regionSchema)
  .length(2, 'exactly two regions: one primary and one secondary')
  .superRefine((regions, ctx) => {
    const roles = new Set(regions.map((r) => r.role));
    if (regions.length === 2 && roles.size !== 2)
      ctx.addIssue({ code: 'custom', message: 'one region must be primary and the other secondary' });
    const names = new Set(regions.map((r) => r.name));
    if (names.size !== regions.length) ctx.addIssue({ code: 'custom', message: 'region names must be distinct' });
  });

/** Parses FAILOVER_REGIONS (a JSON array); unset means the harmless placeholders. */
export function parseRegions(raw: string | undefined): RegionSpec[] {
  if (raw === undefined || raw.trim() === '') return DEFAULT_REGIONS.map((r) => ({ ...r }));
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (error) {
    throw new Error(`invalid configuration: FAILOVER_REGIONS is not valid JSON (${(error as Error).message})`);
  }
  const parsed = regionsSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .map(
        (i) =>
          `${
            i.path.length
              ? i.path
                  .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
                  .join('')
                  .replace(/^\./, '')
              : '(array)'
          }: ${i.message}`
      )
      .join('; ');
    throw new Error(`invalid configuration: FAILOVER_REGIONS ${problems}`);
  }
  // Primary first, whatever order the JSON used.
  return [...parsed.data].sort((a, b) => (a.role === b.role ? 0 : a.role === 'primary' ? -1 : 1));
}

export interface FailoverSettings {
  /** 'live', or a drill's own scope. */
  scope: string;
  /** Lease holder id (CONTROLROOM_INSTANCE_ID): distinct per running instance. */
  holder: string;
  checkIntervalMs: number;
  checkTimeoutMs: number;
  unhealthyAfter: number;
  healthyAfter: number;
  auto: boolean;
  /** Time between the steps of a stepped cutover. */
  stepMs: number;
  leaseMs: number;
  /** Least time writes stay frozen before the write role moves (the router must see the freeze). */
  drainMinMs: number;
  /** Most time writes stay frozen waiting for the target's replication to catch up. */
  drainMaxMs: number;
  /** Replication lag of the target at or under which the write role may move. */
  drainMaxLagSeconds: number;
  /** How often the lease holder looks at a cutover in progress. */
  pollMs: number;
  /** region_checks rows older than this are pruned. */
  checkRetentionMs: number;
  defaultSteps: readonly number[];
  /** Most time a cutover waits (from the pause) for every region's background queue to drain; then it aborts. */
  drainJobsTimeoutMs: number;
  /** Recovery objectives: RTO and RPO targets in seconds. */
  rtoTargetSeconds: number;
  rpoTargetSeconds: number;
  /** Post-cutover integrity checks (live scope only; a drill's regions have no TMS tables behind them). */
  integrity: { enabled: boolean; settleMs: number; maxQueueGrowth: number; maxErrorRateIncrease: number };
}

export type FailoverConfig = Pick<SharedConfig, 'CONTROLROOM_INSTANCE_ID'> & FailoverKeys;

export function failoverSettings(config: FailoverConfig, overrides: Partial<FailoverSettings> = {}): FailoverSettings {
  const stepMs = overrides.stepMs ?? config.FAILOVER_STEP_SECONDS * 1000;
  return {
    scope: LIVE_SCOPE,
    holder: config.CONTROLROOM_INSTANCE_ID,
    checkIntervalMs: config.FAILOVER_CHECK_INTERVAL_SECONDS * 1000,
    checkTimeoutMs: config.FAILOVER_CHECK_TIMEOUT_MS,
    unhealthyAfter: config.FAILOVER_UNHEALTHY_AFTER,
    healthyAfter: config.FAILOVER_HEALTHY_AFTER,
    auto: config.FAILOVER_AUTO,
    stepMs,
    leaseMs: config.FAILOVER_LEASE_SECONDS * 1000,
    drainMinMs: Math.min(2_000, stepMs),
    drainMaxMs: Math.max(stepMs, 1_000),
    drainMaxLagSeconds: 0,
    pollMs: 250,
    checkRetentionMs: 24 * 3_600_000,
    defaultSteps: DEFAULT_STEPS,
    drainJobsTimeoutMs: config.FAILOVER_DRAIN_TIMEOUT_SECONDS * 1000,
    rtoTargetSeconds: config.FAILOVER_RTO_TARGET_SECONDS,
    rpoTargetSeconds: config.FAILOVER_RPO_TARGET_SECONDS,
    integrity: {
      enabled: (overrides.scope ?? LIVE_SCOPE) === LIVE_SCOPE,
      settleMs: config.FAILOVER_INTEGRITY_SETTLE_SECONDS * 1000,
      maxQueueGrowth: config.FAILOVER_INTEGRITY_MAX_QUEUE_GROWTH,
      maxErrorRateIncrease: config.FAILOVER_INTEGRITY_MAX_ERROR_RATE_INCREASE,
    },
    ...overrides,
  };
}
