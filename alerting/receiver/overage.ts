import type { Pool } from '../../core/db.ts';
import { withTransaction } from '../../core/db.ts';
import { audit } from '../../core/audit.ts';
import { companyFeatureUsage } from '../../core/plan-usage.ts';
import { createUsageNoticeOnce, limitBreachPayload } from '../../core/usage-notices.ts';
import type { AlertEventRow } from '../events.ts';

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
 * Turns a firing usage alert into one `notify_ops` agent task (`type: 'limit_breach'`) per company,
 * feature, threshold and period. The period, the usage and the included amount come from
 * core/plan-usage.ts, as the exporter and billing compute them; the notice row's primary key makes a
 * second alert, a redelivery, a retry or the billing tick having seen the threshold first create nothing.
 * An alert for a company that is gone creates nothing.
 */
export async function ensureOverageTask(pool: Pool, event: AlertEventRow): Promise<OverageOutcome | null> {
  const threshold = USAGE_ALERT_THRESHOLDS[event.alertname];
  const companyId = event.labels.company_id;
  const feature = event.labels.feature;
  if (threshold === undefined || event.status !== 'firing' || !companyId || !feature) return null;
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(companyId)) return null;

  const at = new Date(event.starts_at);
  if (Number.isNaN(at.getTime())) return null;

  return withTransaction(pool, 'READ COMMITTED', async (client) => {
    // The period the alert started in, not the one it is processed in: a retry after midnight still
    // notifies for the period that crossed the threshold.
    const usage = await companyFeatureUsage(client, companyId, feature, at);
    if (!usage) return { created: false };
    const payload = limitBreachPayload(usage, threshold, 'alert', {
      alert: { alertname: event.alertname, fingerprint: event.fingerprint, starts_at: event.starts_at },
    });
    const agentTaskId = await createUsageNoticeOnce(client, {
      companyId,
      feature,
      threshold,
      periodStart: usage.periodStart,
      payload,
    });
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
