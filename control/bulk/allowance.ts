import type { Pool, PoolClient } from '../../core/db.ts';
import { HttpError } from '../../core/http.ts';

export interface BulkAllowance {
  companyId: string;
  companyName: string;
  plan: string | null;
  /** Stripe-driven status of the account (active, trialing, grace, past_due, canceled). */
  billingStatus: string | null;
  period: 'day' | 'month';
  periodStart: string;
  /** Lanes per period: -1 unlimited, 0 not in the plan. */
  limit: number;
  used: number;
  remaining: number | null;
}

/** The company's bulk_rating allowance in the current UTC period, from its plan and its usage_events. */
export async function bulkAllowance(db: Pool | PoolClient, companyId: string): Promise<BulkAllowance> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(companyId)) {
    throw new HttpError(400, `company_id '${companyId}' is not a UUID`);
  }
  const { rows } = await db.query<{ name: string; plan_id: string | null; billing_status: string | null; hard_limit: string | null; period: 'day' | 'month' | null; period_start: string; used: string }>(
    `WITH plan AS (
       SELECT c.name, e.plan_id, e.billing_status, pf.hard_limit, coalesce(pf.period, 'month') AS period
         FROM companies c
         LEFT JOIN org_entitlements e ON e.company_id = c.id
         LEFT JOIN plan_features pf ON pf.plan_id = e.plan_id AND pf.feature_key = 'bulk_rating'
        WHERE c.id = $1 AND c.deleted_at IS NULL
     ), bounds AS (
       SELECT date_trunc(plan.period, now() AT TIME ZONE 'UTC') AS start_utc FROM plan
     )
     SELECT plan.name, plan.plan_id, plan.billing_status, plan.hard_limit, plan.period, to_char(bounds.start_utc, 'YYYY-MM-DD') AS period_start,
            coalesce((SELECT sum(qty) FROM usage_events u
                       WHERE u.company_id = $1 AND u.feature_key = 'bulk_rating'
                         AND u.occurred_at >= bounds.start_utc AT TIME ZONE 'UTC'), 0) AS used
       FROM plan, bounds`,
    [companyId],
  );
  const row = rows[0];
  if (!row) throw new HttpError(404, `no live company ${companyId}`);
  const limit = row.hard_limit === null ? 0 : Number(row.hard_limit);
  const used = Number(row.used);
  return {
    companyId,
    companyName: row.name,
    plan: row.plan_id,
    billingStatus: row.billing_status,
    period: row.period ?? 'month',
    periodStart: row.period_start,
    limit,
    used,
    remaining: limit < 0 ? null : Math.max(0, limit - used),
  };
}

/** Refuses a job the plan does not allow: 402 when bulk rating is not in the plan, 429 over the limit. */
export function checkAllowance(allowance: BulkAllowance, requested: number): void {
  const details = { plan: allowance.plan, limit: allowance.limit, used: allowance.used, requested, period: allowance.period, period_start: allowance.periodStart };
  if (!allowance.plan) throw new HttpError(402, `${allowance.companyName} has no plan: bulk rating needs a Pro or Enterprise plan`, details);
  if (allowance.billingStatus === 'past_due') {
    throw new HttpError(402, `${allowance.companyName}'s payment is past due and its grace period has ended: bulk rating is blocked until the invoice is paid`, details);
  }
  if (allowance.limit === 0) {
    throw new HttpError(402, `the ${allowance.plan} plan does not include bulk rating; upgrade to Pro or Enterprise`, details);
  }
  if (allowance.limit > 0 && allowance.used + requested > allowance.limit) {
    throw new HttpError(
      429,
      `bulk rating limit reached: ${allowance.used} of ${allowance.limit} lanes used this ${allowance.period} (since ${allowance.periodStart}); this job has ${requested}`,
      details,
    );
  }
}
