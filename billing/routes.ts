import type { Usage } from '@controlroom/contract';
import express, { type Router } from 'express';
import { requireAction } from '../core/access.ts';
import type { Pool } from '../core/db.ts';
import { meterUnit, usageAgainstPlan } from '../core/plan-usage.ts';
import { UserError } from '../core/errors.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const limitOut = (v: number) => (v < 0 ? null : v);

/**
 * GET /api/usage/:company (Viewer): the plugin's usage meter. Per feature the tenant's plan lists, in the
 * current UTC period: used, soft limit (included) and hard limit (null = unlimited), percent of the
 * included amount (what the 80/90/100 % thresholds measure), overage above it and how much of it Stripe
 * has, thresholds crossed and notified, and whether the hard limit blocks.
 */
export function usageApiRouter(pool: Pool): Router {
  const router = express.Router();
  router.get('/usage/:company', requireAction('read'), async (req, res) => {
    const companyId = String(req.params.company);
    if (!UUID.test(companyId)) throw new UserError(400, `company '${companyId}' is not a UUID`);
    const { rows: companies } = await pool.query<{
      name: string;
      plan_id: string | null;
      billing_status: string | null;
      grace_until: Date | null;
      current_period_end: Date | null;
      trial_ends_at: Date | null;
    }>(
      `SELECT c.name, e.plan_id, e.billing_status, e.grace_until, e.current_period_end, e.trial_ends_at
         FROM companies c LEFT JOIN org_entitlements e ON e.company_id = c.id
        WHERE c.id = $1 AND c.deleted_at IS NULL`,
      [companyId]
    );
    const company = companies[0];
    if (!company) throw new UserError(404, `no live company ${companyId}`);
    const usages = await usageAgainstPlan(pool, { companyId });
    const [{ rows: notices }, { rows: meter }] = await Promise.all([
      pool.query<{ feature: string; period_start: string; threshold: number }>(
        `SELECT feature, to_char(period_start, 'YYYY-MM-DD') AS period_start, threshold FROM controlroom.overage_notices WHERE company_id = $1`,
        [companyId]
      ),
      pool.query<{ feature: string; period_start: string; sent: string; pending: string }>(
        `SELECT feature, to_char(period_start, 'YYYY-MM-DD') AS period_start,
                coalesce(sum(qty) FILTER (WHERE sent_at IS NOT NULL), 0) AS sent,
                coalesce(sum(qty) FILTER (WHERE sent_at IS NULL), 0) AS pending
           FROM controlroom.billing_meter_events WHERE company_id = $1 GROUP BY 1, 2`,
        [companyId]
      ),
    ]);
    const key = (f: string, p: string) => `${f}\u0000${p}`;
    const notified = new Map<string, number[]>();
    for (const n of notices)
      notified.set(
        key(n.feature, n.period_start),
        [...(notified.get(key(n.feature, n.period_start)) ?? []), n.threshold].sort((a, b) => a - b)
      );
    const billed = new Map(meter.map((m) => [key(m.feature, m.period_start), m]));
    const graceOver =
      company.billing_status === 'grace' && company.grace_until !== null && company.grace_until <= new Date();
    res.json({
      companyId,
      companyName: company.name,
      plan: company.plan_id,
      billingStatus: graceOver ? 'past_due' : company.billing_status,
      graceUntil: company.grace_until?.toISOString() ?? null,
      trialEndsAt: company.trial_ends_at?.toISOString() ?? null,
      currentPeriodEnd: company.current_period_end?.toISOString() ?? null,
      features: usages.map((u) => {
        const m = billed.get(key(u.feature, u.periodStart));
        return {
          feature: u.feature,
          unit: meterUnit(u.feature),
          period: u.period,
          periodStart: u.periodStart,
          periodEnd: u.periodEnd,
          used: u.used,
          softLimit: limitOut(u.softLimit),
          hardLimit: limitOut(u.hardLimit),
          remaining: u.remaining,
          percent: u.ratio === null ? null : Math.round(u.ratio * 1000) / 10,
          overage: u.overage,
          overageBilled: Number(m?.sent ?? 0),
          overagePending: Number(m?.pending ?? 0),
          thresholdsCrossed: u.thresholdsCrossed,
          thresholdsNotified: notified.get(key(u.feature, u.periodStart)) ?? [],
          blocked: u.blocked,
        };
      }),
    } satisfies Usage);
  });
  return router;
}
