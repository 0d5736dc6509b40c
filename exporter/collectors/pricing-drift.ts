import type { CollectorContext } from './context.ts';
import { addInto, labelKey, labelValues, type Totals } from './context.ts';
import { IdRollupCollector } from './id-rollup.ts';
import type { Collector } from '../runner.ts';
import type { Pool, PoolClient } from '../../core/db.ts';

/** The collector's name, which is also its row in controlroom.exporter_state. */
export const DRIFT_COLLECTOR = 'pricing_drift';

/**
 * Pricing drift, from the rated bulk lanes (controlroom.pricing_rated_batches, migrations 1700000000023
 * and 1700000000033: one row per rated id, a chunk's tally per arm or a per-lane row as a tally of one).
 * Each refresh folds only ratings since the last one (by the id, which the rated-id sequence hands out
 * when a lane or chunk becomes rated) into totals kept in controlroom.exporter_state, in the same REPEATABLE READ
 * transaction that reads them: exact across restarts, identical on every instance that scrapes, and
 * unaffected when old jobs (and their lanes) are deleted.
 *
 * Per model version and role (the arm of the A/B split that priced the lane): lanes rated, anomaly lanes
 * (only the candidate arm can be one), needs_review lanes, quoted dollars (summed in integer cents, so
 * the total stays exact to the cent) and quoted miles.
 */
export class PricingDriftCollector implements Collector {
  readonly name = DRIFT_COLLECTOR;
  readonly intervalMs: number;
  private readonly rollup: IdRollupCollector;
  private totals: Totals = {};

  constructor(private readonly ctx: CollectorContext) {
    this.intervalMs = ctx.settings.EXPORTER_REFRESH_MS;
    this.rollup = new IdRollupCollector(
      {
        name: this.name,
        table: 'controlroom.pricing_rated_batches',
        count: 'sum(lanes)',
        labels: [
          { name: 'model_version', sql: 'model_version' },
          { name: 'role', sql: 'arm' },
        ],
        values: [`sum(anomaly_lanes)`, `sum(needs_review_lanes)`, `coalesce(sum(cents), 0)`, `coalesce(sum(miles), 0)`],
        publish: (totals) => {
          this.totals = totals;
        },
      },
      ctx
    );
  }

  async refresh(): Promise<void> {
    await this.rollup.refresh();
    // The models in force get their series at 0 before they rate a lane: a counter that first appears
    // already holding a whole batch would be invisible to rate() and increase(), and so to the alert.
    const { rows } = await this.ctx.pool.query<{ version: string; status: 'active' | 'candidate' }>(
      `SELECT version, status FROM controlroom.pricing_models WHERE status IN ('active', 'candidate')`
    );
    const totals: Totals = { ...this.totals };
    for (const r of rows) addInto(totals, labelKey([r.version, r.status]), [0, 0, 0, 0, 0]);
    const entries = Object.entries(totals).map(([key, values]) => {
      const [modelVersion = '', role = ''] = labelValues(key);
      return { labels: { model_version: modelVersion, role }, values };
    });
    const series = (index: number, scale = 1) =>
      entries.map(({ labels, values }) => ({ labels, value: (values[index] ?? 0) / scale }));
    const { metrics } = this.ctx;
    metrics.pricingLanesRated.replace(series(0));
    metrics.pricingAnomalyLanes.replace(series(1));
    metrics.pricingNeedsReviewLanes.replace(series(2));
    metrics.pricingQuotedDollars.replace(series(3, 100));
    metrics.pricingQuotedMiles.replace(series(4));
  }
}

/**
 * The registry's candidate share (controlroom.pricing_models, a handful of rows) and the alert's
 * configured threshold and minimum lanes, which Prometheus rules cannot read from the config.
 */
export class PricingRegistryCollector implements Collector {
  readonly name = 'pricing_registry';
  readonly intervalMs: number;

  constructor(private readonly ctx: CollectorContext) {
    this.intervalMs = ctx.settings.EXPORTER_REFRESH_MS;
  }

  async refresh(): Promise<void> {
    const { rows } = await this.ctx.pool.query<{ version: string; candidate_share: string }>(
      `SELECT version, candidate_share FROM controlroom.pricing_models WHERE status = 'candidate'`
    );
    const { metrics, settings } = this.ctx;
    const candidate = rows[0];
    // Always one series, so "no candidate" reads 0 rather than no data.
    metrics.pricingCandidateShare.replace([
      candidate
        ? { labels: { model_version: candidate.version, role: 'candidate' }, value: Number(candidate.candidate_share) }
        : { labels: { role: 'candidate' }, value: 0 },
    ]);
    metrics.pricingAnomalyAlertRatio.replace([{ labels: {}, value: settings.PRICING_ANOMALY_ALERT_RATIO }]);
    metrics.pricingAnomalyAlertMinLanes.replace([{ labels: {}, value: settings.PRICING_ANOMALY_ALERT_MIN_LANES }]);
  }
}

/** One model version's all-time totals in one role, as the drift collector last committed them. */
export interface DriftTotals {
  modelVersion: string;
  role: string;
  lanesRated: number;
  anomalyLanes: number;
  needsReviewLanes: number;
  quotedDollars: number;
  quotedMiles: number;
}

/**
 * The drift collector's committed totals (the same numbers /metrics publishes) and when they were last
 * folded; empty with a null time before its first refresh. Reads one row: O(1) whatever the lanes.
 */
export async function readDriftTotals(db: Pool | PoolClient): Promise<{ totals: DriftTotals[]; asOf: Date | null }> {
  const { rows } = await db.query<{ state: { totals?: Totals }; updated_at: Date }>(
    `SELECT state, updated_at FROM controlroom.exporter_state WHERE collector = $1`,
    [DRIFT_COLLECTOR]
  );
  const row = rows[0];
  if (!row) return { totals: [], asOf: null };
  const totals = Object.entries(row.state.totals ?? {}).map(
    ([key, [lanes = 0, anomalies = 0, review = 0, cents = 0, miles = 0]]) => {
      const [modelVersion = '', role = ''] = labelValues(key);
      return {
        modelVersion,
        role,
        lanesRated: lanes,
        anomalyLanes: anomalies,
        needsReviewLanes: review,
        quotedDollars: cents / 100,
        quotedMiles: miles,
      };
    }
  );
  return { totals, asOf: row.updated_at };
}
