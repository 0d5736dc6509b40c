import type { CollectorContext } from '../../exporter/collectors/context.ts';
import { histogramSamples, type Sample } from '../../exporter/snapshot-metric.ts';
import type { Collector } from '../../exporter/runner.ts';
import { SEVERITIES, SLA_STAGES } from './sla.ts';

/**
 * Bucket bounds of the incident time histograms, in seconds: minutes for a P1 (4 h = 14400 is a bound), one
 * and three days for P2/P3 (86400, 259200), and the stretched budgets a weekend adds to a business-day
 * budget (a Friday-evening P2 is due Monday evening, ~3 days; a P3 up to 5 days). The histograms are in
 * elapsed time; whether a business-day budget was met is what the breach counter says, not a bucket.
 */
export const INCIDENT_DURATION_BUCKETS = [
  300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 259200, 345600, 432000, 604800, 1209600,
] as const;

interface SeverityRow {
  severity: string;
  ack_buckets: number[];
  ack_count: number;
  ack_sum: number;
  resolve_buckets: number[];
  resolve_count: number;
  resolve_sum: number;
  ack_breaches: number;
  resolve_breaches: number;
  open: number;
  past_sla: number;
}

/**
 * The incident SLA metrics, recomputed from controlroom.incidents on every refresh.
 *
 * Why a full aggregate and not an incremental fold (as the api_requests cursor does): incidents are few
 * (hundreds to a few thousand a year, one row each), so one grouped query over the table takes
 * milliseconds, needs no state of its own, and gives every instance the same numbers, exact after any
 * restart, with nothing to reconcile. The counters and histograms stay monotonic because incident rows are
 * never deleted and their times never change once set (a breach, once its deadline passed, stays one). If a
 * retention is ever added, it must keep the totals (then a fold into exporter_state is the way).
 * Deadlines are compared with the database clock (`now()`), one clock for every instance.
 */
export class IncidentsCollector implements Collector {
  readonly name = 'incidents';
  readonly intervalMs: number;

  constructor(private readonly ctx: CollectorContext) {
    this.intervalMs = ctx.settings.EXPORTER_REFRESH_MS;
  }

  async refresh(now?: Date): Promise<void> {
    const { rows } = await this.ctx.pool.query<SeverityRow>(
      `WITH clock AS (SELECT coalesce($2::timestamptz, now()) AS now),
            -- As of the clock: a time after it has not happened yet (only a test's clock is in the past).
            asof AS (
              SELECT severity, paged_at, ack_due_at, resolve_due_at,
                     CASE WHEN acknowledged_at <= c.now THEN acknowledged_at END AS acknowledged_at,
                     CASE WHEN resolved_at <= c.now THEN resolved_at END AS resolved_at
                FROM controlroom.incidents CROSS JOIN clock c
               WHERE paged_at <= c.now),
            t AS (
              SELECT severity, acknowledged_at, resolved_at, ack_due_at, resolve_due_at,
                     extract(epoch FROM acknowledged_at - paged_at)::float8 AS tta,
                     extract(epoch FROM resolved_at - paged_at)::float8 AS ttr
                FROM asof)
       SELECT s.severity,
              (SELECT array_agg((SELECT count(*) FROM t WHERE t.severity = s.severity AND t.tta <= b.le)::int ORDER BY b.i)
                 FROM unnest($1::float8[]) WITH ORDINALITY AS b(le, i)) AS ack_buckets,
              (SELECT array_agg((SELECT count(*) FROM t WHERE t.severity = s.severity AND t.ttr <= b.le)::int ORDER BY b.i)
                 FROM unnest($1::float8[]) WITH ORDINALITY AS b(le, i)) AS resolve_buckets,
              count(t.tta)::int AS ack_count, coalesce(sum(t.tta), 0)::float8 AS ack_sum,
              count(t.ttr)::int AS resolve_count, coalesce(sum(t.ttr), 0)::float8 AS resolve_sum,
              count(*) FILTER (WHERE coalesce(t.acknowledged_at, c.now) >= t.ack_due_at)::int AS ack_breaches,
              count(*) FILTER (WHERE coalesce(t.resolved_at, c.now) >= t.resolve_due_at)::int AS resolve_breaches,
              count(*) FILTER (WHERE t.resolved_at IS NULL AND t.severity IS NOT NULL)::int AS open,
              count(*) FILTER (WHERE t.resolved_at IS NULL AND t.severity IS NOT NULL
                                 AND (c.now >= t.resolve_due_at OR (t.acknowledged_at IS NULL AND c.now >= t.ack_due_at)))::int AS past_sla
         FROM unnest($3::text[]) AS s(severity)
         CROSS JOIN clock c
         LEFT JOIN t ON t.severity = s.severity
        GROUP BY s.severity
        ORDER BY s.severity`,
      [INCIDENT_DURATION_BUCKETS, now ?? null, SEVERITIES]
    );
    const { metrics } = this.ctx;
    const ack: Sample[] = [];
    const resolve: Sample[] = [];
    const breaches: Sample[] = [];
    for (const r of rows) {
      const labels = { severity: r.severity };
      ack.push(
        ...histogramSamples(
          metrics.incidentTimeToAcknowledge.name,
          INCIDENT_DURATION_BUCKETS,
          labels,
          r.ack_buckets,
          r.ack_count,
          r.ack_sum
        )
      );
      resolve.push(
        ...histogramSamples(
          metrics.incidentTimeToResolve.name,
          INCIDENT_DURATION_BUCKETS,
          labels,
          r.resolve_buckets,
          r.resolve_count,
          r.resolve_sum
        )
      );
      for (const stage of SLA_STAGES) {
        breaches.push({
          labels: { severity: r.severity, stage },
          value: stage === 'acknowledge' ? r.ack_breaches : r.resolve_breaches,
        });
      }
    }
    metrics.incidentTimeToAcknowledge.replace(ack);
    metrics.incidentTimeToResolve.replace(resolve);
    metrics.incidentSlaBreaches.replace(breaches);
    metrics.incidentsOpen.replace(rows.map((r) => ({ labels: { severity: r.severity }, value: r.open })));
    metrics.incidentsPastSla.replace(rows.map((r) => ({ labels: { severity: r.severity }, value: r.past_sla })));
  }
}
