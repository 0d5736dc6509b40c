import type { PoolClient } from '../../core/db.ts';
import { OVERLAND_EXPRESS } from './names.ts';
import { loadPlanLimits, tenantProfile, type DemoTenant, type PlanLimits } from './profiles.ts';
import { Rng, hashSeed } from './random.ts';
import { startOfUtcMonth, type Incident } from './schedule.ts';

export interface DemoOptions {
  /** Seed of the PRNG: the same seed and clock replay the same rows. */
  seed?: number;
  tenants?: number;
  backfillDays?: number;
  /** API calls per second at the afternoon peak. */
  requestsPerSecond?: number;
  tickMs?: number;
  now?: () => Date;
}

export type ResolvedDemoOptions = Required<DemoOptions>;

export function resolveOptions(options: DemoOptions = {}): ResolvedDemoOptions {
  return {
    seed: options.seed ?? 42,
    tenants: options.tenants ?? 60,
    backfillDays: options.backfillDays ?? 30,
    requestsPerSecond: options.requestsPerSecond ?? 25,
    tickMs: options.tickMs ?? 1000,
    now: options.now ?? (() => new Date()),
  };
}

/** What live traffic remembers between ticks; everything else is read back from the TMS tables. */
export interface DemoState {
  readonly options: ResolvedDemoOptions;
  readonly rng: Rng;
  limits: PlanLimits | null;
  /** Tenants that can use the product now: live, and paying or still in trial. */
  tenants: DemoTenant[];
  tenantsLoadedAt: Date | null;
  overlandId: string | null;
  /** Month-to-date usage of capped monthly features, by `${companyId}/${feature}`, for `usageMonth`. */
  monthUsage: Map<string, number>;
  usageMonth: number | null;
  /** Last time the once-a-minute bookkeeping (expiring quotes) ran. */
  lastHousekeepingAt: Date | null;
  /** The incidents of the latest tick (scheduled and triggered), for the operator's log lines. */
  incidents: Incident[];
}

export function createDemoState(options: DemoOptions = {}): DemoState {
  const resolved = resolveOptions(options);
  return {
    options: resolved,
    // Live traffic draws from its own stream, so a seeded database plus N ticks is reproducible.
    rng: new Rng(hashSeed(resolved.seed, 'live')),
    limits: null,
    tenants: [],
    tenantsLoadedAt: null,
    overlandId: null,
    monthUsage: new Map(),
    usageMonth: null,
    lastHousekeepingAt: null,
    incidents: [],
  };
}

/** Trials end and new tenants sign up, so the tenant list is re-read every few minutes of demo time. */
const TENANT_REFRESH_MS = 10 * 60_000;

export function markTenantsStale(state: DemoState): void {
  state.tenantsLoadedAt = null;
}

const usageKey = (companyId: string, feature: string) => `${companyId}/${feature}`;

export function monthUsed(state: DemoState, companyId: string, feature: string): number {
  return state.monthUsage.get(usageKey(companyId, feature)) ?? 0;
}

/** Keeps month-to-date usage current from this process's own writes, without re-summing usage_events. */
export function recordUsage(state: DemoState, companyId: string, feature: string, qty: number): void {
  const key = usageKey(companyId, feature);
  if (state.monthUsage.has(key)) state.monthUsage.set(key, (state.monthUsage.get(key) ?? 0) + qty);
}

export async function ensureTenants(client: PoolClient, state: DemoState, at: Date): Promise<PlanLimits> {
  state.limits ??= await loadPlanLimits(client);
  const limits = state.limits;
  const month = startOfUtcMonth(at).getTime();
  const stale =
    state.tenantsLoadedAt === null || Math.abs(at.getTime() - state.tenantsLoadedAt.getTime()) >= TENANT_REFRESH_MS;
  if (!stale && state.usageMonth === month) return limits;

  const { rows } = await client.query<{ id: string; name: string; plan_id: string }>(
    `SELECT c.id, c.name, e.plan_id
       FROM companies c JOIN org_entitlements e ON e.company_id = c.id
      WHERE c.deleted_at IS NULL AND c.created_at <= $1
        AND (e.stripe_subscription_id IS NOT NULL OR e.trial_ends_at > $1)
      ORDER BY c.name, c.id`,
    [at]
  );
  state.tenants = rows.map((r) => ({
    id: r.id,
    name: r.name,
    plan: r.plan_id,
    profile: tenantProfile(state.options.seed, r.name, r.plan_id),
  }));
  state.tenantsLoadedAt = at;
  state.overlandId = state.tenants.find((t) => t.name === OVERLAND_EXPRESS)?.id ?? null;

  // Only capped monthly features need tracking: they decide throttling and Overland's runaway.
  const pairs = state.tenants.flatMap((t) =>
    (['rates', 'bulk_rating'] as const)
      .filter((f) => limits.capped(t.plan, f)?.period === 'month')
      .map((f) => [t.id, f] as const)
  );
  const usage = await client.query<{ company_id: string; feature_key: string; qty: string }>(
    `SELECT u.company_id, u.feature_key, sum(u.qty)::text AS qty
       FROM unnest($1::uuid[], $2::text[]) AS p(company_id, feature_key)
       JOIN usage_events u ON u.company_id = p.company_id AND u.feature_key = p.feature_key
      WHERE u.occurred_at >= $3 AND u.occurred_at <= $4
      GROUP BY 1, 2`,
    [pairs.map(([id]) => id), pairs.map(([, f]) => f), new Date(month), at]
  );
  state.monthUsage = new Map(pairs.map(([id, f]) => [usageKey(id, f), 0]));
  for (const r of usage.rows) state.monthUsage.set(usageKey(r.company_id, r.feature_key), Number(r.qty));
  state.usageMonth = month;
  return limits;
}
