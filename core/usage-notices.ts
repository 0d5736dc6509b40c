import type { PoolClient } from './db.ts';
import { meterUnit, type FeatureUsage } from './plan-usage.ts';

/**
 * The `notify_ops` payload of a usage threshold, the same from both paths. `type: 'limit_breach'` is the
 * product plan's field; `limit` is the included amount the threshold is measured against.
 */
export function limitBreachPayload(
  u: FeatureUsage,
  threshold: number,
  source: 'billing' | 'alert',
  extra: Record<string, unknown> = {}
): Record<string, unknown> {
  return {
    type: 'limit_breach',
    company_id: u.companyId,
    company_name: u.companyName,
    plan: u.plan,
    feature: u.feature,
    unit: meterUnit(u.feature),
    threshold,
    value: u.ratio,
    used: u.used,
    limit: u.thresholdBase,
    soft_limit: u.softLimit,
    hard_limit: u.hardLimit,
    overage: u.overage,
    period: u.period,
    period_start: u.periodStart,
    source,
    ...extra,
  };
}

export interface UsageNotice {
  companyId: string;
  feature: string;
  threshold: number;
  /** YYYY-MM-DD: first day of the usage period the notice is for. */
  periodStart: string;
  payload: Record<string, unknown>;
}

/**
 * Creates the `notify_ops` agent task for a usage threshold, at most once per company, feature,
 * threshold and period, whichever path crosses it first (a usage alert through the receiver, or the
 * billing tick). Returns the new task id, or null when the notice existed already. Call inside the
 * caller's transaction so the task commits with what it reports.
 */
export async function createUsageNoticeOnce(client: PoolClient, notice: UsageNotice): Promise<number | null> {
  const { rows } = await client.query<{ id: string }>(
    `WITH notice AS (
       INSERT INTO controlroom.overage_notices (company_id, feature, threshold, period_start, agent_task_id)
       VALUES ($1, $2, $3, $4::date, nextval(pg_get_serial_sequence('agent_tasks', 'id')))
       ON CONFLICT DO NOTHING
       RETURNING agent_task_id
     )
     INSERT INTO agent_tasks (id, company_id, fn_name, payload, status)
     SELECT agent_task_id, $1, 'notify_ops', $5::jsonb, 'queued' FROM notice
     RETURNING id`,
    [notice.companyId, notice.feature, notice.threshold, notice.periodStart, JSON.stringify(notice.payload)]
  );
  return rows[0] ? Number(rows[0].id) : null;
}
