import type { PoolClient } from '../../core/db.ts';
import { hashSeed, Rng } from './random.ts';
import { MEAN_DIURNAL } from './schedule.ts';
import { QUOTE_SHARE_OF_API } from './shape.ts';

/**
 * Who uses how much. A tenant's profile is a pure function of the demo seed and its name, so the seeder
 * and a later process running live traffic agree on it without storing anything beyond the TMS tables;
 * history and live traffic therefore run at the same pace.
 */

export type MeteredFeature = 'rates' | 'api_access' | 'bulk_rating';

export interface PlanLimit {
  /** -1 unlimited, 0 not in the plan. */
  hard: number;
  soft: number;
  period: 'day' | 'month';
}

export class PlanLimits {
  constructor(private readonly byKey: ReadonlyMap<string, PlanLimit>) {}

  get(plan: string, feature: string): PlanLimit | undefined {
    return this.byKey.get(`${plan}/${feature}`);
  }

  /** The limit when the product enforces one (hard > 0); null when unlimited or not included. */
  capped(plan: string, feature: string): PlanLimit | null {
    const limit = this.get(plan, feature);
    return limit && limit.hard > 0 ? limit : null;
  }

  /** The included amount (soft limit, what usage warnings and overage are measured against); null when there is none. */
  included(plan: string, feature: string): number | null {
    const limit = this.get(plan, feature);
    return limit && limit.soft > 0 ? limit.soft : null;
  }

  includes(plan: string, feature: string): boolean {
    const limit = this.get(plan, feature);
    return limit !== undefined && limit.hard !== 0;
  }
}

export async function loadPlanLimits(client: PoolClient): Promise<PlanLimits> {
  const { rows } = await client.query<{
    plan_id: string;
    feature_key: string;
    hard_limit: string;
    soft_limit: string;
    period: 'day' | 'month';
  }>(`SELECT plan_id, feature_key, hard_limit, soft_limit, period FROM plan_features`);
  return new PlanLimits(
    new Map(
      rows.map((r) => [
        `${r.plan_id}/${r.feature_key}`,
        { hard: Number(r.hard_limit), soft: Number(r.soft_limit), period: r.period },
      ])
    )
  );
}

export interface TenantProfile {
  /** Relative business volume: a few big brokers, many small ones. */
  size: number;
  quotesPerDay: number;
  carrierInvitesPerDay: number;
  /** Fraction of the included amount (soft limit) used per period (a day for api_access and bulk jobs, 30 days for monthly features). */
  pace: Record<MeteredFeature, number>;
}

export interface DemoTenant {
  id: string;
  name: string;
  plan: string;
  profile: TenantProfile;
}

const QUOTES_PER_DAY: Record<string, number> = { starter: 2, pro: 5, enterprise: 12 };
const INVITES_PER_DAY: Record<string, number> = { starter: 0.3, pro: 1, enterprise: 3 };
/** Stand-in daily budget for unlimited plans, so enterprise API calls and bulk jobs still have a plausible size. */
const UNLIMITED_STANDIN: Record<MeteredFeature, number> = { rates: 0, api_access: 250_000, bulk_rating: 40 };

export function tenantProfile(seed: number, name: string, plan: string): TenantProfile {
  const rng = new Rng(hashSeed(seed, 'profile', name));
  const size = Math.min(3, Math.max(0.4, rng.logNormal(1, 0.5)));
  return {
    size,
    quotesPerDay: (QUOTES_PER_DAY[plan] ?? 2) * size,
    carrierInvitesPerDay: (INVITES_PER_DAY[plan] ?? 0.3) * Math.min(size, 2),
    pace: { rates: rng.between(0.15, 0.6), api_access: rng.between(0.1, 0.5), bulk_rating: rng.between(0.1, 0.45) },
  };
}

export const MONTH_DAYS = 30;

/** Expected quote requests per second at the average point of the day. */
export function meanQuoteRate(requestsPerSecond: number): number {
  return requestsPerSecond * QUOTE_SHARE_OF_API * MEAN_DIURNAL;
}

/**
 * Each tenant's share of quote requests (one `rates` unit each). Capped tenants take exactly what their
 * pace allows; uncapped (enterprise) tenants absorb the rest by size, as the big shippers do.
 * `throttle` slows a tenant down, e.g. once it has passed its soft limit and been warned.
 */
export function rateShares(
  tenants: readonly DemoTenant[],
  limits: PlanLimits,
  requestsPerSecond: number,
  throttle: (tenant: DemoTenant) => number = () => 1
): Map<string, number> {
  const perDay = meanQuoteRate(requestsPerSecond) * 86_400;
  const shares = new Map<string, number>();
  const uncapped: DemoTenant[] = [];
  let cappedTotal = 0;
  for (const t of tenants) {
    const limit = limits.get(t.plan, 'rates');
    if (!limit || limit.hard === 0) continue;
    if (limit.hard < 0) {
      uncapped.push(t);
      continue;
    }
    const share = perDay > 0 ? (Math.max(0, limit.soft) * t.profile.pace.rates * throttle(t)) / MONTH_DAYS / perDay : 0;
    shares.set(t.id, share);
    cappedTotal += share;
  }
  if (cappedTotal > 1 || uncapped.length === 0) {
    for (const [id, share] of shares) shares.set(id, cappedTotal > 0 ? share / cappedTotal : 0);
    return shares;
  }
  const sizes = uncapped.reduce((sum, t) => sum + t.profile.size, 0);
  for (const t of uncapped) shares.set(t.id, ((1 - cappedTotal) * t.profile.size) / sizes);
  return shares;
}

/**
 * Each API-enabled tenant's share of API calls: its integration uses about `pace` of its daily included calls.
 * The calls left over are the TMS's own web app, first-party and unmetered, so tenants stay within their
 * limits whatever the configured request rate.
 */
export function apiShares(
  tenants: readonly DemoTenant[],
  limits: PlanLimits,
  requestsPerSecond: number
): Map<string, number> {
  const weights = tenants.flatMap((t) => {
    const limit = limits.get(t.plan, 'api_access');
    if (!limit || limit.hard === 0) return [];
    const budget = limit.soft > 0 ? limit.soft : UNLIMITED_STANDIN.api_access;
    return [[t.id, budget * t.profile.pace.api_access] as const];
  });
  const perDay = requestsPerSecond * MEAN_DIURNAL * 86_400;
  const total = Math.max(
    perDay,
    weights.reduce((sum, [, w]) => sum + w, 0)
  );
  return new Map(weights.map(([id, w]) => [id, total > 0 ? w / total : 0]));
}

/**
 * Bulk rating jobs per second at the average point of the day (0 when the plan has no bulk rating). The
 * plan meters jobs per day: a pro broker submits a job or two a day of its five included, an enterprise
 * a few dozen.
 */
export function bulkJobRate(tenant: DemoTenant, limits: PlanLimits): number {
  const limit = limits.get(tenant.plan, 'bulk_rating');
  if (!limit || limit.hard === 0) return 0;
  const budget = limit.soft > 0 ? limit.soft : UNLIMITED_STANDIN.bulk_rating;
  return (budget * tenant.profile.pace.bulk_rating) / 86_400;
}
