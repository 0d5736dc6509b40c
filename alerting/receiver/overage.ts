import type { Pool } from '../../core/db.ts';
import { withTransaction } from '../../core/db.ts';
import { audit } from '../../core/audit.ts';
import { createUsageNoticeOnce } from '../../core/usage-notices.ts';
import type { AlertEventRow } from './events.ts';

/** The usage alerts of alerting/rules/operational.rules.yml and the threshold each stands for. */
export const USAGE_ALERT_THRESHOLDS: Record<string, number> = {
  UsageAbove80Percent: 80,
  UsageAbove90Percent: 90,
  UsageLimitReached: 100,
};

export interface OverageOutcome {
  created: boolean;
  agentTaskId?: number;
}

/**
 * Turns a firing usage alert into one `notify_ops` agent task per company, feature, threshold and period.
 * The period and the value come from the plan and the usage rollup, as the exporter defines them; the
 * notice row's primary key makes a second alert, a redelivery or a retry create nothing.
 */
export async function ensureOverageTask(pool: Pool, event: AlertEventRow): Promise<OverageOutcome | null> {
  const threshold = USAGE_ALERT_THRESHOLDS[event.alertname];
  const companyId = event.labels.company_id;
  const feature = event.labels.feature;
  if (threshold === undefined || event.status !== 'firing' || !companyId || !feature) return null;
  if (!/^[0-9a-f-]{36}$/i.test(companyId)) return null;

  return withTransaction(pool, 'READ COMMITTED', async (client) => {
    const { rows } = await client.query<{
      company_name: string | null;
      plan_id: string | null;
      period: 'day' | 'month' | null;
      hard_limit: string | null;
      period_start: string;
      used: string;
    }>(
      `WITH plan AS (
         SELECT c.name AS company_name, e.plan_id, pf.period, pf.hard_limit
           FROM companies c
           LEFT JOIN org_entitlements e ON e.company_id = c.id
           LEFT JOIN plan_features pf ON pf.plan_id = e.plan_id AND pf.feature_key = $2
          WHERE c.id = $1
       ), bounds AS (
         SELECT to_char(date_trunc(coalesce((SELECT period FROM plan), 'month'), $3::timestamptz AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS period_start
       )
       SELECT plan.*, bounds.period_start,
              coalesce((SELECT sum(qty) FROM controlroom.usage_daily u
                         WHERE u.company_id = $1 AND u.feature_key = $2
                           AND u.day >= bounds.period_start::date
                           AND u.day < bounds.period_start::date + CASE WHEN coalesce(plan.period, 'month') = 'day'
                                                                        THEN interval '1 day' ELSE interval '1 month' END), 0) AS used
         FROM bounds LEFT JOIN plan ON true`,
      [companyId, feature, event.starts_at],
    );
    const info = rows[0]!;
    const limit = info.hard_limit === null ? null : Number(info.hard_limit);
    const used = Number(info.used);
    const payload = {
      company_id: companyId,
      company_name: info.company_name,
      plan: info.plan_id,
      feature,
      threshold,
      value: limit && limit > 0 ? used / limit : null,
      used,
      limit,
      period: info.period ?? 'month',
      period_start: info.period_start,
      alert: { alertname: event.alertname, fingerprint: event.fingerprint, starts_at: event.starts_at },
    };
    const agentTaskId = await createUsageNoticeOnce(client, { companyId, feature, threshold, periodStart: info.period_start, payload });
    if (agentTaskId === null) return { created: false };
    await audit(client, {
      actor: 'controlroom:receiver',
      action: 'overage.notify_ops_created',
      target: `agent_tasks/${agentTaskId}`,
      companyId,
      payload,
    });
    return { created: true, agentTaskId };
  });
}
