import type { BulkAllowance, LimitRefusalDetails } from '@controlroom/contract';
import type { Pool, PoolClient } from '../../core/db.ts';
import { UserError } from '../../core/errors.ts';
import { companyFeatureUsage, describePeriod, nextPlanFor } from '../../core/plan-usage.ts';

export const BULK_FEATURE = 'bulk_rating';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The company's bulk_rating allowance in the current UTC period (core/plan-usage.ts defines it). */
export async function bulkAllowance(db: Pool | PoolClient, companyId: string): Promise<BulkAllowance> {
  if (!UUID.test(companyId)) throw new UserError(400, `company_id '${companyId}' is not a UUID`);
  const usage = await companyFeatureUsage(db, companyId, BULK_FEATURE);
  if (!usage) throw new UserError(404, `no live company ${companyId}`);
  return {
    companyId,
    companyName: usage.companyName,
    plan: usage.plan,
    billingStatus: usage.billingStatus,
    unit: 'jobs',
    period: usage.period,
    periodStart: usage.periodStart,
    limit: usage.hardLimit,
    included: usage.softLimit,
    used: usage.used,
    remaining: usage.remaining,
    upgrade: await nextPlanFor(db, usage.plan, BULK_FEATURE, usage.hardLimit),
  };
}

/**
 * Refuses a job the plan does not allow: 402 when bulk rating is not in the plan (or the account is past
 * due), 429 when one more job would pass the hard limit. The refusal's details carry the usage, the
 * upgrade hint (the next plan that includes more) and, for the limit, the "request increase" flow.
 */
export function checkAllowance(allowance: BulkAllowance, requestedJobs = 1): void {
  const details: LimitRefusalDetails = {
    plan: allowance.plan,
    feature: BULK_FEATURE,
    unit: allowance.unit,
    limit: allowance.limit,
    included: allowance.included,
    used: allowance.used,
    requested: requestedJobs,
    period: allowance.period,
    periodStart: allowance.periodStart,
    upgrade: allowance.upgrade,
  };
  const hint = allowance.upgrade
    ? `; the ${allowance.upgrade.name} plan includes ${allowance.upgrade.hardLimit < 0 ? 'unlimited' : allowance.upgrade.hardLimit} jobs per ${allowance.upgrade.period}`
    : '';
  if (!allowance.plan)
    throw new UserError(
      402,
      `${allowance.companyName} has no plan: bulk rating needs a plan that includes it${hint}`,
      details
    );
  if (allowance.billingStatus === 'past_due') {
    throw new UserError(
      402,
      `${allowance.companyName}'s payment is past due and its grace period has ended: bulk rating is blocked until the invoice is paid`,
      details
    );
  }
  if (allowance.limit === 0) {
    throw new UserError(402, `the ${allowance.plan} plan does not include bulk rating${hint}`, details);
  }
  if (allowance.limit > 0 && allowance.used + requestedJobs > allowance.limit) {
    throw new UserError(
      429,
      `bulk rating limit reached: ${allowance.used} of ${allowance.limit} jobs used ${describePeriod(allowance.period, allowance.periodStart)}${hint}; or ask for an increase (POST /api/limits/requests)`,
      {
        ...details,
        requestIncrease: {
          method: 'POST',
          path: '/api/limits/requests',
          feature: BULK_FEATURE,
          currentLimit: allowance.limit,
        },
      } satisfies LimitRefusalDetails
    );
  }
}
