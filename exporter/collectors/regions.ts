import { histogramSamples } from '../snapshot-metric.ts';
import type { CollectorContext } from './context.ts';
import type { Collector } from '../runner.ts';
import { CHECK_LATENCY_BUCKETS } from '../../control/failover/health.ts';
import { LIVE_SCOPE } from '../../control/failover/settings.ts';

/** A failed integrity check keeps its P1 metric up this long after the check ran (then the next cutover decides). */
export const INTEGRITY_ALERT_HOURS = 24;

/**
 * The live regions as the failover engine last recorded them: tms_region_up, tms_region_active,
 * tms_region_traffic_weight, tms_region_consecutive_failures, tms_region_replication_lag_seconds (regions
 * with a lag URL and a reading), tms_region_write_frozen, tms_region_cutover_in_progress (the
 * failover-window latency SLO counts quotes only while it is 1; absent, like the freeze, until the
 * control row exists), tms_region_jobs_paused and the health checks' round-trip histogram
 * tms_region_check_duration_seconds; and the recovery evidence: the RTO / RPO targets, the last drill's
 * and game day's figures, and the last post-cutover integrity checks.
 */
export class RegionsCollector implements Collector {
  readonly name = 'regions';
  readonly intervalMs: number;

  constructor(
    private readonly ctx: CollectorContext,
    private readonly scope: string = LIVE_SCOPE
  ) {
    this.intervalMs = ctx.settings.EXPORTER_REFRESH_MS;
  }

  async refresh(): Promise<void> {
    const [regions, control, drills, integrity] = await Promise.all([
      this.ctx.pool.query<{
        name: string;
        healthy: boolean;
        active: boolean;
        traffic_weight: number;
        consecutive_failures: number;
        replication_lag_url: string | null;
        replication_lag_seconds: number | null;
        check_latency_buckets: string[];
        check_latency_count: string;
        check_latency_sum: number;
      }>(
        `SELECT name, healthy, active, traffic_weight, consecutive_failures, replication_lag_url, replication_lag_seconds,
                check_latency_buckets, check_latency_count, check_latency_sum
           FROM controlroom.regions WHERE scope = $1 ORDER BY name`,
        [this.scope]
      ),
      this.ctx.pool.query<{ write_frozen: boolean; cutover_in_progress: boolean; jobs_paused: boolean }>(
        `SELECT write_frozen, cutover IS NOT NULL AS cutover_in_progress, jobs_paused FROM controlroom.failover_control WHERE scope = $1`,
        [this.scope]
      ),
      this.ctx.pool.query<{
        kind: string;
        outcome: string;
        rto_seconds: number | null;
        rpo_seconds: number | null;
        finished: number;
      }>(
        `SELECT DISTINCT ON (kind) kind, outcome, rto_seconds, rpo_seconds, extract(epoch FROM finished_at)::float8 AS finished
           FROM controlroom.failover_drills WHERE finished_at IS NOT NULL ORDER BY kind, finished_at DESC, id DESC`
      ),
      this.ctx.pool.query<{ checks: Array<{ check: string; passed: boolean }> }>(
        `SELECT details->'integrity'->'checks' AS checks FROM controlroom.failover_events
          WHERE scope = $1 AND details->'integrity'->>'status' IN ('passed', 'failed')
            AND (details->'integrity'->>'checked_at')::timestamptz > now() - $2 * interval '1 hour'
          ORDER BY (details->'integrity'->>'checked_at')::timestamptz DESC LIMIT 1`,
        [this.scope, INTEGRITY_ALERT_HOURS]
      ),
    ]);
    const { metrics, settings } = this.ctx;
    const per = (value: (r: (typeof regions.rows)[number]) => number) =>
      regions.rows.map((r) => ({ labels: { region: r.name }, value: value(r) }));
    metrics.regionUp.replace(per((r) => (r.healthy ? 1 : 0)));
    metrics.regionActive.replace(per((r) => (r.active ? 1 : 0)));
    metrics.regionTrafficWeight.replace(per((r) => r.traffic_weight));
    metrics.regionConsecutiveFailures.replace(per((r) => r.consecutive_failures));
    metrics.regionReplicationLag.replace(
      regions.rows
        .filter((r) => r.replication_lag_url !== null && r.replication_lag_seconds !== null)
        .map((r) => ({ labels: { region: r.name }, value: r.replication_lag_seconds! }))
    );
    metrics.regionCheckDuration.replace(
      regions.rows.flatMap((r) =>
        histogramSamples(
          metrics.regionCheckDuration.name,
          CHECK_LATENCY_BUCKETS,
          { region: r.name },
          CHECK_LATENCY_BUCKETS.map((_, i) => Number(r.check_latency_buckets[i] ?? 0)),
          Number(r.check_latency_count),
          r.check_latency_sum
        )
      )
    );
    const row = control.rows[0];
    metrics.regionWriteFrozen.replace(row ? [{ labels: {}, value: row.write_frozen ? 1 : 0 }] : []);
    metrics.regionCutoverInProgress.replace(row ? [{ labels: {}, value: row.cutover_in_progress ? 1 : 0 }] : []);
    metrics.regionJobsPaused.replace(row ? [{ labels: {}, value: row.jobs_paused ? 1 : 0 }] : []);

    metrics.failoverObjectiveTarget.replace([
      { labels: { objective: 'rto' }, value: settings.FAILOVER_RTO_TARGET_SECONDS },
      { labels: { objective: 'rpo' }, value: settings.FAILOVER_RPO_TARGET_SECONDS },
    ]);
    metrics.failoverLastDrillSeconds.replace(
      drills.rows.flatMap((d) => [
        ...(d.rto_seconds === null ? [] : [{ labels: { kind: d.kind, objective: 'rto' }, value: d.rto_seconds }]),
        ...(d.rpo_seconds === null ? [] : [{ labels: { kind: d.kind, objective: 'rpo' }, value: d.rpo_seconds }]),
      ])
    );
    metrics.failoverLastDrillPassed.replace(
      drills.rows.map((d) => ({ labels: { kind: d.kind }, value: d.outcome === 'passed' ? 1 : 0 }))
    );
    metrics.failoverLastDrillTimestamp.replace(
      drills.rows.map((d) => ({ labels: { kind: d.kind }, value: d.finished }))
    );
    metrics.failoverIntegrityFailed.replace(
      (integrity.rows[0]?.checks ?? []).map((c) => ({ labels: { check: c.check }, value: c.passed ? 0 : 1 }))
    );
  }
}

export const createRegionsCollector = (ctx: CollectorContext): Collector => new RegionsCollector(ctx);
