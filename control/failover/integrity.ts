/**
 * Post-cutover integrity checks (Phase 6 runbook): the TMS's invoice count, agent queue depth and API error
 * rate are read when a cutover starts and again a settle time after it completed, compared, and recorded
 * with the cutover (failover_events.details.integrity). A failed check raises a P1 through the metric
 * controlroom_failover_integrity_check_failed and the FailoverIntegrityCheckFailed rule.
 */
import type { Db, IntegrityFigures } from './store.ts';

/** The API error rate "before" is read over the 5 minutes before the cutover started. */
export const ERROR_RATE_WINDOW_SECONDS = 300;

export interface IntegrityLimits {
  maxQueueGrowth: number;
  maxErrorRateIncrease: number;
}

export interface IntegrityCheck {
  check: 'invoices' | 'agent_queue_depth' | 'api_error_rate';
  passed: boolean;
  before: number | null;
  after: number | null;
  detail: string;
}

/** Reads the figures: invoices and open agent tasks now, the API error rate over [from, to). */
export async function readIntegrityFigures(db: Db, window: { from: Date; to: Date }): Promise<IntegrityFigures> {
  const { rows } = await db.query<{ invoices: string; queue: string; requests: string; errors: string }>(
    `SELECT (SELECT count(*) FROM invoices) AS invoices,
            (SELECT count(*) FROM agent_tasks WHERE status IN ('queued', 'running')) AS queue,
            count(*) AS requests,
            count(*) FILTER (WHERE status_code >= 500) AS errors
       FROM api_requests WHERE created_at >= $1 AND created_at < $2`,
    [window.from, window.to]
  );
  const r = rows[0]!;
  const requests = Number(r.requests);
  return {
    at: new Date().toISOString(),
    invoices: Number(r.invoices),
    agent_queue_depth: Number(r.queue),
    api_error_rate: requests === 0 ? null : Number(r.errors) / requests,
    api_requests: requests,
    window_seconds: Math.round((window.to.getTime() - window.from.getTime()) / 1000),
  };
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

/**
 * Before vs after:
 * - invoices: none may disappear (after >= before; the TMS only ever adds invoices);
 * - agent queue depth: may grow by at most `maxQueueGrowth` (the resumed jobs are being worked off);
 * - API error rate: may rise by at most `maxErrorRateIncrease` (absolute); no traffic on either side passes,
 *   saying so.
 */
export function judgeIntegrity(
  before: IntegrityFigures,
  after: IntegrityFigures,
  limits: IntegrityLimits
): IntegrityCheck[] {
  const invoices: IntegrityCheck = {
    check: 'invoices',
    before: before.invoices,
    after: after.invoices,
    passed: after.invoices >= before.invoices,
    detail:
      after.invoices >= before.invoices
        ? `${after.invoices} invoices after, ${before.invoices} before`
        : `${before.invoices - after.invoices} invoices fewer after the cutover (${before.invoices} → ${after.invoices})`,
  };
  const growth = after.agent_queue_depth - before.agent_queue_depth;
  const queue: IntegrityCheck = {
    check: 'agent_queue_depth',
    before: before.agent_queue_depth,
    after: after.agent_queue_depth,
    passed: growth <= limits.maxQueueGrowth,
    detail:
      growth <= limits.maxQueueGrowth
        ? `${after.agent_queue_depth} open agent tasks after, ${before.agent_queue_depth} before (at most +${limits.maxQueueGrowth})`
        : `the agent queue grew by ${growth} (${before.agent_queue_depth} → ${after.agent_queue_depth}), more than the ${limits.maxQueueGrowth} allowed`,
  };
  let errors: IntegrityCheck;
  if (before.api_error_rate === null || after.api_error_rate === null) {
    errors = {
      check: 'api_error_rate',
      before: before.api_error_rate,
      after: after.api_error_rate,
      passed: true,
      detail: `not comparable: no API requests ${before.api_error_rate === null ? 'before' : 'after'} the cutover`,
    };
  } else {
    const rise = after.api_error_rate - before.api_error_rate;
    const passed = rise <= limits.maxErrorRateIncrease + 1e-12;
    errors = {
      check: 'api_error_rate',
      before: before.api_error_rate,
      after: after.api_error_rate,
      passed,
      detail: passed
        ? `${pct(after.api_error_rate)} of API requests failed after, ${pct(before.api_error_rate)} before`
        : `the API error rate rose from ${pct(before.api_error_rate)} to ${pct(after.api_error_rate)}, more than ${pct(limits.maxErrorRateIncrease)}`,
    };
  }
  return [invoices, queue, errors];
}

export interface Objectives {
  rto_seconds: number | null;
  rpo_seconds: number | null;
  rto_target_seconds: number;
  rpo_target_seconds: number;
  rto_met: boolean | null;
  rpo_met: boolean | null;
  /** Both met; false when either was missed; null when a figure could not be measured. */
  passed: boolean | null;
}

/** RTO and RPO judged against the targets. An unmeasured figure is neither met nor missed. */
export function judgeObjectives(
  rto: number | null,
  rpo: number | null,
  targets: { rtoTargetSeconds: number; rpoTargetSeconds: number }
): Objectives {
  const rtoMet = rto === null ? null : rto <= targets.rtoTargetSeconds;
  const rpoMet = rpo === null ? null : rpo <= targets.rpoTargetSeconds;
  return {
    rto_seconds: rto,
    rpo_seconds: rpo,
    rto_target_seconds: targets.rtoTargetSeconds,
    rpo_target_seconds: targets.rpoTargetSeconds,
    rto_met: rtoMet,
    rpo_met: rpoMet,
    passed: rtoMet === false || rpoMet === false ? false : rtoMet === null || rpoMet === null ? null : true,
  };
}
