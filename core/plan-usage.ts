import type { Pool, PoolClient } from './db.ts';
import { planValue } from './plan-targets.ts';

/**
 * "Usage this period against the plan", defined once. The exporter (tms_usage_ratio and the bands), the
 * alert receiver's overage tasks, billing (meter, threshold notices, GET /api/usage) and the bulk rating
 * allowance all take their periods, limits and thresholds from here, so a change of period or limit
 * semantics is one edit in this file.
 *
 * - A plan's limits are its plan_features rows: soft_limit is the INCLUDED amount (overage is billed
 *   above it), hard_limit is where the product blocks; -1 = unlimited. A feature the plan does not list
 *   (or lists with a hard limit of 0, as the inactive `revoked` plan does) is not included.
 * - Periods are UTC calendar days or months (plan_features.period), computed by `periodBounds`.
 * - Warnings (80, 90, 100 %) are measured against the included amount, so a tenant hears 80 % and 90 %
 *   before any overage is billed and 100 % when it is used up and billing starts.
 */

export type Period = 'day' | 'month';

/** The warning thresholds, percent of the included amount (the plan's numbers, core/plan-targets.ts). */
export const THRESHOLDS: readonly number[] = [
  planValue('usage_warning_first'),
  planValue('usage_warning_second'),
  planValue('usage_billing_starts'),
].map((ratio) => Math.round(ratio * 100));

/** The meters as the product plan (Phase 6) names them; `unit` is what one usage_events qty counts. */
export const METERS: Readonly<Record<string, { unit: string; defaultPeriod: Period }>> = {
  rates: { unit: 'quotes', defaultPeriod: 'month' },
  bulk_rating: { unit: 'jobs', defaultPeriod: 'day' },
  directory: { unit: 'invites', defaultPeriod: 'month' },
  api_access: { unit: 'API calls', defaultPeriod: 'day' },
};

export const meterUnit = (feature: string) => METERS[feature]?.unit ?? 'units';

export interface PeriodBounds {
  period: Period;
  /** YYYY-MM-DD of the period's first UTC day: the key of notices and meter events. */
  start: string;
  startAt: Date;
  /** Exclusive end. */
  endAt: Date;
}

/** The UTC calendar period of kind `period` that contains `at`. */
export function periodBounds(period: Period, at: Date): PeriodBounds {
  const y = at.getUTCFullYear();
  const m = at.getUTCMonth();
  const startAt = period === 'day' ? new Date(Date.UTC(y, m, at.getUTCDate())) : new Date(Date.UTC(y, m, 1));
  const endAt = period === 'day' ? new Date(Date.UTC(y, m, at.getUTCDate() + 1)) : new Date(Date.UTC(y, m + 1, 1));
  return { period, start: startAt.toISOString().slice(0, 10), startAt, endAt };
}

/** The period before `bounds`. */
export const previousPeriod = (bounds: PeriodBounds): PeriodBounds =>
  periodBounds(bounds.period, new Date(bounds.startAt.getTime() - 1));

/** The limit thresholds are measured against: the included amount; null when unlimited or none is included. */
export const thresholdBase = (softLimit: number): number | null => (softLimit > 0 ? softLimit : null);

/** used / included amount: 1 means the included amount is used up; null when there is no included amount. */
export function usageRatio(used: number, softLimit: number): number | null {
  const base = thresholdBase(softLimit);
  return base === null ? null : used / base;
}

export function thresholdsCrossed(used: number, softLimit: number): number[] {
  const base = thresholdBase(softLimit);
  return base === null ? [] : THRESHOLDS.filter((t) => used * 100 >= t * base);
}

/** Units above the included amount (billed as overage); 0 when unlimited or not included. */
export const overageOf = (used: number, softLimit: number): number =>
  softLimit > 0 ? Math.max(0, used - softLimit) : 0;

/** Units left before the hard limit blocks; null when unlimited. */
export const remainingOf = (used: number, hardLimit: number): number | null =>
  hardLimit < 0 ? null : Math.max(0, hardLimit - used);

/** Whether `requested` more units would be refused: not included, or over the hard limit. */
export const wouldExceed = (used: number, requested: number, hardLimit: number): boolean =>
  hardLimit === 0 || (hardLimit > 0 && used + requested > hardLimit);

export const USAGE_BANDS = ['lt80', '80to90', '90to100', 'over'] as const;
export type UsageBand = (typeof USAGE_BANDS)[number];

/** Band of a ratio against the included amount; `over` = the included amount is used up (overage billed). */
export function usageBand(ratio: number): UsageBand {
  if (ratio >= 1) return 'over';
  if (ratio >= 0.9) return '90to100';
  if (ratio >= 0.8) return '80to90';
  return 'lt80';
}

/** One tenant's limits for one feature, from its plan. */
export interface PlanLimit {
  companyId: string;
  companyName: string;
  /** null: the company has no entitlement. */
  plan: string | null;
  billingStatus: string | null;
  stripeCustomerId: string | null;
  feature: string;
  period: Period;
  /** Included amount; -1 unlimited, 0 none. */
  softLimit: number;
  /** Where the product blocks; -1 unlimited, 0 not included. */
  hardLimit: number;
  included: boolean;
}

export interface FeatureUsage extends PlanLimit {
  periodStart: string;
  /** Exclusive end of the period, ISO instant. */
  periodEnd: string;
  current: boolean;
  used: number;
  /** used / included amount (null when unlimited or none included). */
  ratio: number | null;
  overage: number;
  /** The included amount when thresholds apply, else null. */
  thresholdBase: number | null;
  thresholdsCrossed: number[];
  remaining: number | null;
  /** The hard limit is reached (or the feature is not included): the next unit is refused. */
  blocked: boolean;
}

/** Everything derived from a limit and its usage in one period. */
export function featureUsage(limit: PlanLimit, bounds: PeriodBounds, used: number, current = true): FeatureUsage {
  return {
    ...limit,
    periodStart: bounds.start,
    periodEnd: bounds.endAt.toISOString(),
    current,
    used,
    ratio: usageRatio(used, limit.softLimit),
    overage: overageOf(used, limit.softLimit),
    thresholdBase: thresholdBase(limit.softLimit),
    thresholdsCrossed: thresholdsCrossed(used, limit.softLimit),
    remaining: remainingOf(used, limit.hardLimit),
    blocked: wouldExceed(used, 1, limit.hardLimit),
  };
}

interface LimitRow {
  company_id: string;
  company_name: string;
  plan_id: string | null;
  billing_status: string | null;
  stripe_customer_id: string | null;
  feature_key: string;
  period: Period;
  soft_limit: string | null;
  hard_limit: string | null;
}

// A NULL limit is read as 0: a limit nobody set includes nothing (fail closed).
const limitOf = (r: LimitRow): PlanLimit => {
  const hardLimit = r.hard_limit === null ? 0 : Number(r.hard_limit);
  return {
    companyId: r.company_id,
    companyName: r.company_name,
    plan: r.plan_id,
    billingStatus: r.billing_status,
    stripeCustomerId: r.stripe_customer_id,
    feature: r.feature_key,
    period: r.period,
    softLimit: r.soft_limit === null ? 0 : Number(r.soft_limit),
    hardLimit,
    included: hardLimit !== 0,
  };
};

const LIMITS_SQL = `
  SELECT c.id AS company_id, c.name AS company_name, e.plan_id, e.billing_status, e.stripe_customer_id,
         pf.feature_key, pf.period, pf.soft_limit, pf.hard_limit
    FROM companies c
    JOIN org_entitlements e ON e.company_id = c.id
    JOIN plan_features pf ON pf.plan_id = e.plan_id
   WHERE c.deleted_at IS NULL
     AND ($1::uuid IS NULL OR c.id = $1)
     AND ($2::text IS NULL OR pf.feature_key = $2)
     AND (NOT $3::boolean OR pf.soft_limit > 0 OR pf.hard_limit > 0)`;

export interface LimitQuery {
  /** One company, or every live company with an entitlement. */
  companyId?: string;
  feature?: string;
  /** Only features with a positive soft or hard limit (what can have thresholds, overage or a block). */
  limitedOnly?: boolean;
}

/** The plan limits of live tenants (the exporter keeps its own running usage sums against them). */
export async function loadPlanLimits(db: Pool | PoolClient, query: LimitQuery = {}): Promise<PlanLimit[]> {
  const { rows } = await db.query<LimitRow>(`${LIMITS_SQL} ORDER BY c.id, pf.feature_key`, [
    query.companyId ?? null,
    query.feature ?? null,
    query.limitedOnly ?? false,
  ]);
  return rows.map(limitOf);
}

export interface UsageQuery extends LimitQuery {
  /** The instant whose periods are wanted (default now). */
  at?: Date;
  /** Also the previous period during the first day of a new one, so its last usage is still billed. */
  includePreviousPeriod?: boolean;
}

/**
 * Usage per tenant and feature in the periods containing `at`, summed from usage_events (the TMS's
 * record, not the exporter's rollup, which may lag by a refresh): the meter, the 429 and the bill agree.
 */
export async function usageAgainstPlan(db: Pool | PoolClient, query: UsageQuery = {}): Promise<FeatureUsage[]> {
  const at = query.at ?? new Date();
  const periods: { bounds: PeriodBounds; current: boolean }[] = [];
  for (const kind of ['day', 'month'] as const) {
    const current = periodBounds(kind, at);
    periods.push({ bounds: current, current: true });
    // The first day of a period: the previous one may still have usage to bill.
    if (query.includePreviousPeriod && at.getTime() < current.startAt.getTime() + 86_400_000) {
      periods.push({ bounds: previousPeriod(current), current: false });
    }
  }
  const { rows } = await db.query<LimitRow & { p: number; used: string }>(
    `WITH lim AS (${LIMITS_SQL}),
     p AS (SELECT * FROM unnest($4::int[], $5::text[], $6::timestamptz[], $7::timestamptz[]) AS p(i, kind, start_at, end_at))
     SELECT lim.*, p.i AS p,
            coalesce((SELECT sum(u.qty) FROM usage_events u
                       WHERE u.company_id = lim.company_id AND u.feature_key = lim.feature_key
                         AND u.occurred_at >= p.start_at AND u.occurred_at < p.end_at), 0) AS used
       FROM lim JOIN p ON p.kind = lim.period
      ORDER BY lim.company_id, lim.feature_key, p.start_at`,
    [
      query.companyId ?? null,
      query.feature ?? null,
      query.limitedOnly ?? false,
      periods.map((_, i) => i),
      periods.map((p) => p.bounds.period),
      periods.map((p) => p.bounds.startAt),
      periods.map((p) => p.bounds.endAt),
    ]
  );
  return rows.map((r) => {
    const period = periods[r.p]!;
    return featureUsage(limitOf(r), period.bounds, Number(r.used), period.current);
  });
}

/**
 * One company's usage of one feature in the current period, also when its plan does not include the
 * feature (included: false, limits 0, the meter's usual period) or it has no plan (plan: null). null
 * when there is no live company with that id.
 */
export async function companyFeatureUsage(
  db: Pool | PoolClient,
  companyId: string,
  feature: string,
  at = new Date()
): Promise<FeatureUsage | null> {
  const [usage] = await usageAgainstPlan(db, { companyId, feature, at });
  if (usage) return usage;
  const { rows } = await db.query<{
    name: string;
    plan_id: string | null;
    billing_status: string | null;
    stripe_customer_id: string | null;
  }>(
    `SELECT c.name, e.plan_id, e.billing_status, e.stripe_customer_id
       FROM companies c LEFT JOIN org_entitlements e ON e.company_id = c.id
      WHERE c.id = $1 AND c.deleted_at IS NULL`,
    [companyId]
  );
  const company = rows[0];
  if (!company) return null;
  const period = METERS[feature]?.defaultPeriod ?? 'month';
  const limit: PlanLimit = {
    companyId,
    companyName: company.name,
    plan: company.plan_id,
    billingStatus: company.billing_status,
    stripeCustomerId: company.stripe_customer_id,
    feature,
    period,
    softLimit: 0,
    hardLimit: 0,
    included: false,
  };
  return featureUsage(limit, periodBounds(period, at), 0);
}

export interface UpgradeHint {
  plan: string;
  name: string;
  /** The next plan's limits for the feature: -1 unlimited. */
  hardLimit: number;
  softLimit: number;
  period: Period;
  priceMonthly: number;
}

/**
 * The next plan (lowest tier above the company's, among active plans) that includes more of `feature`
 * than `currentHardLimit` (0 = not included); null when none does (already unlimited, or the top plan).
 */
export async function nextPlanFor(
  db: Pool | PoolClient,
  currentPlan: string | null,
  feature: string,
  currentHardLimit: number
): Promise<UpgradeHint | null> {
  if (currentHardLimit < 0) return null;
  const { rows } = await db.query<{
    id: string;
    name: string;
    price_monthly: string;
    hard_limit: string;
    soft_limit: string;
    period: Period;
  }>(
    `SELECT p.id, p.name, p.price_monthly, pf.hard_limit, pf.soft_limit, pf.period
       FROM plans p JOIN plan_features pf ON pf.plan_id = p.id AND pf.feature_key = $2
      WHERE p.is_active
        AND p.tier > coalesce((SELECT tier FROM plans WHERE id = $1), 0)
        AND (pf.hard_limit = -1 OR pf.hard_limit > $3)
      ORDER BY p.tier, p.id
      LIMIT 1`,
    [currentPlan, feature, currentHardLimit]
  );
  const r = rows[0];
  return r
    ? {
        plan: r.id,
        name: r.name,
        hardLimit: Number(r.hard_limit),
        softLimit: Number(r.soft_limit),
        period: r.period,
        priceMonthly: Number(r.price_monthly),
      }
    : null;
}

/** "this month (since 2026-12-01)" / "today (UTC day 2026-12-01)": how refusals and notices name a period. */
export const describePeriod = (period: Period, start: string) =>
  period === 'day' ? `today (UTC day ${start})` : `this month (since ${start})`;
