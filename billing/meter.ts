import { createHash } from 'node:crypto';
import { createUsageNoticeOnce, limitBreachPayload } from '../core/usage-notices.ts';
import type { Pool } from '../core/db.ts';
import { withTransaction } from '../core/db.ts';
import { audit } from '../core/audit.ts';
import type { Logger } from '../core/logger.ts';
import { meterEventName, type BillingConfig } from './config.ts';
import type { Stripe } from './stripe.ts';
import type { FeatureUsage } from '../core/plan-usage.ts';

/**
 * The meter event identifier of overage units [unitsFrom, …) of one tenant, feature and period. It is
 * fixed when the outbox row is written, so every resend of the row carries it and Stripe counts it once.
 * Stripe allows 100 characters; longer ones (long feature keys) are hashed.
 */
export function meterIdentifier(companyId: string, feature: string, periodStart: string, unitsFrom: number): string {
  const plain = `cr:${companyId}:${feature}:${periodStart}:${unitsFrom}`;
  return plain.length <= 100 ? plain : `cr:${createHash('sha256').update(plain).digest('hex')}`;
}

export interface QueuedMeterEvent {
  identifier: string;
  companyId: string;
  feature: string;
  qty: number;
  unitsFrom: number;
  periodStart: string;
}

/**
 * Writes an outbox row for the overage not yet in the outbox, per tenant, feature and period. Rows of a
 * period cover contiguous ranges of cumulative overage units (units_from is unique), and the
 * per-tenant/feature/period advisory lock makes two concurrent runs write one row, never two.
 */
export async function queueOverage(
  pool: Pool,
  config: BillingConfig,
  usages: FeatureUsage[],
  logger: Logger
): Promise<QueuedMeterEvent[]> {
  const queued: QueuedMeterEvent[] = [];
  for (const u of usages) {
    if (u.overage <= 0) continue;
    if (!u.stripeCustomerId) {
      logger.warn(
        { company: u.companyId, feature: u.feature, overage: u.overage },
        'overage but no stripe_customer_id: not billed until the tenant is linked'
      );
      continue;
    }
    const row = await withTransaction(pool, 'READ COMMITTED', async (client) => {
      await client.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [
        `billing:${u.companyId}:${u.feature}:${u.periodStart}`,
      ]);
      const { rows } = await client.query<{ reported: string }>(
        `SELECT coalesce(max(units_from + qty), 0) AS reported FROM controlroom.billing_meter_events
          WHERE company_id = $1 AND feature = $2 AND period_start = $3::date`,
        [u.companyId, u.feature, u.periodStart]
      );
      const reported = Number(rows[0]?.reported ?? 0);
      if (u.overage <= reported) return null;
      const qty = u.overage - reported;
      const identifier = meterIdentifier(u.companyId, u.feature, u.periodStart, reported);
      // A period that has ended is reported at its last second, so it lands in the invoice it belongs to.
      const timestamp = new Date(Math.min(Date.now(), Date.parse(u.periodEnd) - 1000));
      const inserted = await client.query(
        `INSERT INTO controlroom.billing_meter_events
           (identifier, company_id, feature, event_name, stripe_customer_id, qty, units_from, period_start, event_timestamp)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::date, $9)
         ON CONFLICT DO NOTHING`,
        [
          identifier,
          u.companyId,
          u.feature,
          meterEventName(config, u.feature),
          u.stripeCustomerId,
          qty,
          reported,
          u.periodStart,
          timestamp,
        ]
      );
      if (inserted.rowCount === 0) return null;
      return {
        identifier,
        companyId: u.companyId,
        feature: u.feature,
        qty,
        unitsFrom: reported,
        periodStart: u.periodStart,
      };
    });
    if (row) queued.push(row);
  }
  return queued;
}

interface OutboxRow {
  identifier: string;
  event_name: string;
  stripe_customer_id: string;
  qty: string;
  event_timestamp: Date;
  attempts: number;
}

export interface SendResult {
  sent: string[];
  failed: { identifier: string; error: string }[];
}

/** Stripe answering that it already has this identifier means an earlier send got through. */
function alreadyRecorded(error: unknown): boolean {
  const e = error as { code?: string; message?: string; statusCode?: number };
  return (
    e.code === 'resource_already_exists' ||
    (e.statusCode === 400 && /identifier/i.test(e.message ?? '') && /already|duplicate|exists/i.test(e.message ?? ''))
  );
}

/**
 * Sends due outbox rows to Stripe (`POST /v1/billing/meter_events`), oldest first, at most
 * BILLING_METER_BATCH per run with BILLING_METER_CONCURRENCY requests in flight. Rows are leased for
 * five minutes when claimed, so a sender that dies mid-batch hands them to the next run; a failure
 * keeps the row with its error and retries it with exponential backoff. The identifier travels as the
 * meter event identifier and as the request's Idempotency-Key: a resend is never counted twice.
 */
export async function sendPending(
  pool: Pool,
  stripe: Stripe,
  config: BillingConfig,
  logger: Logger
): Promise<SendResult> {
  const { rows } = await pool.query<OutboxRow>(
    `UPDATE controlroom.billing_meter_events m SET next_attempt_at = now() + interval '5 minutes'
      WHERE m.identifier IN (SELECT identifier FROM controlroom.billing_meter_events
                              WHERE sent_at IS NULL AND next_attempt_at <= now()
                              ORDER BY created_at, identifier
                              LIMIT $1 FOR UPDATE SKIP LOCKED)
      RETURNING m.identifier, m.event_name, m.stripe_customer_id, m.qty, m.event_timestamp, m.attempts`,
    [config.BILLING_METER_BATCH]
  );
  const result: SendResult = { sent: [], failed: [] };
  const queue = [...rows];
  const worker = async () => {
    for (let row = queue.shift(); row; row = queue.shift()) {
      try {
        try {
          await stripe.billing.meterEvents.create(
            {
              event_name: row.event_name,
              identifier: row.identifier,
              timestamp: Math.floor(row.event_timestamp.getTime() / 1000),
              payload: { stripe_customer_id: row.stripe_customer_id, value: String(row.qty) },
            },
            { idempotencyKey: `meter:${row.identifier}` }
          );
        } catch (error) {
          if (!alreadyRecorded(error)) throw error;
        }
        await pool.query(
          `UPDATE controlroom.billing_meter_events SET sent_at = now(), attempts = attempts + 1, last_error = NULL WHERE identifier = $1`,
          [row.identifier]
        );
        result.sent.push(row.identifier);
      } catch (error) {
        const message = (error as Error).message || String(error);
        const delay = Math.min(3600, config.BILLING_METER_RETRY_BASE_SECONDS * 2 ** Math.min(row.attempts, 12));
        await pool.query(
          `UPDATE controlroom.billing_meter_events
              SET attempts = attempts + 1, last_error = $2, next_attempt_at = now() + make_interval(secs => $3)
            WHERE identifier = $1`,
          [row.identifier, message.slice(0, 1000), delay]
        );
        result.failed.push({ identifier: row.identifier, error: message });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(config.BILLING_METER_CONCURRENCY, rows.length) }, worker));
  if (result.failed.length > 0)
    logger.warn(
      { failed: result.failed.length, first: result.failed[0] },
      'stripe meter events failed; kept in the outbox for retry'
    );
  return result;
}

export interface NoticeOutcome {
  companyId: string;
  feature: string;
  threshold: number;
  agentTaskId: number;
}

/**
 * One notify_ops agent task per tenant, feature, threshold (80/90/100 % of the included amount) and period, on the
 * same controlroom.overage_notices rows as the alert receiver's usage alerts: whichever path sees a
 * threshold first notifies, the other finds the notice and does nothing. When several thresholds are
 * crossed at once, one task is created for the highest and the lower ones are marked with it.
 */
export async function notifyThresholds(pool: Pool, usages: FeatureUsage[]): Promise<NoticeOutcome[]> {
  const created: NoticeOutcome[] = [];
  for (const u of usages) {
    if (!u.current || u.thresholdsCrossed.length === 0) continue;
    const outcome = await withTransaction(pool, 'READ COMMITTED', async (client) => {
      const { rows: existing } = await client.query<{ threshold: number }>(
        `SELECT threshold FROM controlroom.overage_notices WHERE company_id = $1 AND feature = $2 AND period_start = $3::date`,
        [u.companyId, u.feature, u.periodStart]
      );
      const have = new Set(existing.map((r) => r.threshold));
      const missing = u.thresholdsCrossed.filter((t) => !have.has(t));
      const top = missing.at(-1);
      if (top === undefined) return null;
      const payload = limitBreachPayload(u, top, 'billing');
      const agentTaskId = await createUsageNoticeOnce(client, {
        companyId: u.companyId,
        feature: u.feature,
        threshold: top,
        periodStart: u.periodStart,
        payload,
      });
      if (agentTaskId === null) return null;
      for (const lower of missing.slice(0, -1)) {
        await client.query(
          `INSERT INTO controlroom.overage_notices (company_id, feature, threshold, period_start, agent_task_id)
           VALUES ($1, $2, $3, $4::date, $5) ON CONFLICT DO NOTHING`,
          [u.companyId, u.feature, lower, u.periodStart, agentTaskId]
        );
      }
      await audit(client, {
        actor: 'controlroom:billing',
        action: 'overage.notify_ops_created',
        target: `agent_tasks/${agentTaskId}`,
        companyId: u.companyId,
        payload,
      });
      return { companyId: u.companyId, feature: u.feature, threshold: top, agentTaskId };
    });
    if (outcome) created.push(outcome);
  }
  return created;
}
