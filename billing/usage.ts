import type { Pool, PoolClient } from '../core/db.ts';

/** The thresholds (percent of the limit) at which ops are told, as the usage alerts define them. */
export const THRESHOLDS = [80, 90, 100] as const;

export interface FeatureUsage {
  companyId: string;
  companyName: string;
  plan: string;
  billingStatus: string;
  stripeCustomerId: string | null;
  feature: string;
  period: 'day' | 'month';
  /** UTC calendar period: YYYY-MM-DD of its first day, and its exclusive end as an ISO instant. */
  periodStart: string;
  periodEnd: string;
  current: boolean;
  used: number;
  /** Included amount (overage is billed above it): -1 unlimited, 0 not in the plan. */
  softLimit: number | null;
  /** Where the product blocks: -1 unlimited, 0 not in the plan. */
  hardLimit: number | null;
  /** Units above the soft limit this period (0 when the soft limit is unlimited or 0). */
  overage: number;
  /** The limit thresholds are measured against: the hard limit, else the soft limit; null = none. */
  thresholdBase: number | null;
  thresholdsCrossed: number[];
}

interface Row {
  company_id: string;
  company_name: string;
  plan_id: string;
  billing_status: string;
  stripe_customer_id: string | null;
  feature_key: string;
  period: 'day' | 'month';
  period_start: string;
  period_end: Date;
  current: boolean;
  soft_limit: string | null;
  hard_limit: string | null;
  used: string;
}

export function overageOf(used: number, softLimit: number | null): number {
  return softLimit !== null && softLimit > 0 ? Math.max(0, used - softLimit) : 0;
}

export function thresholdBaseOf(hardLimit: number | null, softLimit: number | null): number | null {
  if (hardLimit !== null && hardLimit > 0) return hardLimit;
  if (softLimit !== null && softLimit > 0) return softLimit;
  return null;
}

export function crossed(used: number, base: number | null): number[] {
  return base === null ? [] : THRESHOLDS.filter((t) => used * 100 >= t * base);
}

function toUsage(r: Row): FeatureUsage {
  const used = Number(r.used);
  const softLimit = r.soft_limit === null ? null : Number(r.soft_limit);
  const hardLimit = r.hard_limit === null ? null : Number(r.hard_limit);
  const base = thresholdBaseOf(hardLimit, softLimit);
  return {
    companyId: r.company_id,
    companyName: r.company_name,
    plan: r.plan_id,
    billingStatus: r.billing_status,
    stripeCustomerId: r.stripe_customer_id,
    feature: r.feature_key,
    period: r.period,
    periodStart: r.period_start,
    periodEnd: r.period_end.toISOString(),
    current: r.current,
    used,
    softLimit,
    hardLimit,
    overage: overageOf(used, softLimit),
    thresholdBase: base,
    thresholdsCrossed: crossed(used, base),
  };
}

export interface UsageQuery {
  /** One company, or every live company with an entitlement. */
  companyId?: string;
  /** Only features with a positive soft or hard limit (what can have overage or thresholds). */
  limitedOnly?: boolean;
  /** Also the previous period during the first day of a new one, so its last usage is still billed. */
  includePreviousPeriod?: boolean;
}

/**
 * Usage per tenant and feature in UTC calendar periods (day or month, from plan_features.period), from
 * usage_events: the same source and bounds as bulk rating's hard-limit check, so the meter, the 429 and
 * the bill agree. (controlroom.usage_daily is the exporter's rollup and may lag by a refresh.)
 */
export async function usageFor(db: Pool | PoolClient, query: UsageQuery = {}): Promise<FeatureUsage[]> {
  const { rows } = await db.query<Row>(
    `WITH now_utc AS (SELECT now() AT TIME ZONE 'UTC' AS t),
     limits AS (
       SELECT e.company_id, c.name AS company_name, e.plan_id, e.billing_status, e.stripe_customer_id,
              pf.feature_key, pf.period, pf.soft_limit, pf.hard_limit,
              date_trunc(pf.period, (SELECT t FROM now_utc)) AS cur_start,
              CASE WHEN pf.period = 'day' THEN interval '1 day' ELSE interval '1 month' END AS len
         FROM org_entitlements e
         JOIN companies c ON c.id = e.company_id AND c.deleted_at IS NULL
         JOIN plan_features pf ON pf.plan_id = e.plan_id
        WHERE ($1::uuid IS NULL OR e.company_id = $1)
          AND (NOT $2 OR pf.soft_limit > 0 OR pf.hard_limit > 0)
     ),
     periods AS (
       SELECT l.*, p.start, p.start = l.cur_start AS current
         FROM limits l
         CROSS JOIN LATERAL (VALUES (l.cur_start), (l.cur_start - l.len)) AS p(start)
        WHERE p.start = l.cur_start OR ($3 AND (SELECT t FROM now_utc) < l.cur_start + interval '1 day')
     )
     SELECT p.company_id, p.company_name, p.plan_id, p.billing_status, p.stripe_customer_id, p.feature_key, p.period,
            to_char(p.start, 'YYYY-MM-DD') AS period_start, (p.start + p.len) AT TIME ZONE 'UTC' AS period_end, p.current,
            p.soft_limit, p.hard_limit,
            coalesce((SELECT sum(u.qty) FROM usage_events u
                       WHERE u.company_id = p.company_id AND u.feature_key = p.feature_key
                         AND u.occurred_at >= p.start AT TIME ZONE 'UTC'
                         AND u.occurred_at < (p.start + p.len) AT TIME ZONE 'UTC'), 0) AS used
       FROM periods p
      ORDER BY p.company_id, p.feature_key, p.start`,
    [query.companyId ?? null, query.limitedOnly ?? false, query.includePreviousPeriod ?? false],
  );
  return rows.map(toUsage);
}
