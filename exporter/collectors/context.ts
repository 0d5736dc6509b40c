import type { Config } from '../../core/config.ts';
import type { Pool } from '../../core/db.ts';
import type { ExporterMetrics } from '../metrics.ts';

export type ExporterSettings = Pick<
  Config,
  | 'EXPORTER_REFRESH_MS'
  | 'EXPORTER_SLOW_REFRESH_MS'
  | 'EXPORTER_USAGE_CAP'
  | 'EXPORTER_GAP_GRACE_SECONDS'
  | 'EXPORTER_SETTLE_SECONDS'
  | 'EXPORTER_BATCH_IDS'
  | 'FAILOVER_RTO_TARGET_SECONDS'
  | 'FAILOVER_RPO_TARGET_SECONDS'
  | 'EVIDENCE_DIR'
  | 'EVIDENCE_SCHEDULE'
  | 'KPI_ARPA_BASELINE_DOLLARS'
  | 'KPI_ARPA_BASELINE_AT'
  | 'KPI_OVERAGE_UNIT_PRICES'
  | 'PRICING_ANOMALY_ALERT_RATIO'
  | 'PRICING_ANOMALY_ALERT_MIN_LANES'
>;

export interface CollectorContext {
  pool: Pool;
  metrics: ExporterMetrics;
  settings: ExporterSettings;
}

/** Label values are kept as a JSON array string so totals survive a round trip through jsonb. */
export const labelKey = (values: readonly string[]): string => JSON.stringify(values);
export const labelValues = (key: string): string[] => JSON.parse(key) as string[];

export type Totals = Record<string, number[]>;

export function addInto(totals: Totals, key: string, values: readonly number[]): void {
  const current = totals[key] ?? new Array<number>(values.length).fill(0);
  totals[key] = current.map((v, i) => v + (values[i] ?? 0));
}
