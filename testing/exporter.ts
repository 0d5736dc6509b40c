import type { Pool } from '../core/db.ts';
import { createLogger } from '../core/logger.ts';
import { parseMetrics, seriesKey } from './prom-text.ts';
import type { ExporterSettings } from '../exporter/collectors/context.ts';
import { createExporter, type Exporter } from '../exporter/exporter.ts';

export const testSettings: ExporterSettings = {
  EXPORTER_REFRESH_MS: 5_000,
  EXPORTER_SLOW_REFRESH_MS: 60_000,
  EXPORTER_USAGE_CAP: 500,
  EXPORTER_GAP_GRACE_SECONDS: 600,
  EXPORTER_SETTLE_SECONDS: 300,
  EXPORTER_BATCH_IDS: 1_000_000,
  FAILOVER_RTO_TARGET_SECONDS: 900,
  FAILOVER_RPO_TARGET_SECONDS: 300,
  EVIDENCE_DIR: undefined,
  EVIDENCE_SCHEDULE: 'Mon 02:00',
  KPI_ARPA_BASELINE_DOLLARS: undefined,
  KPI_ARPA_BASELINE_AT: undefined,
  KPI_OVERAGE_UNIT_PRICES: {},
  PRICING_ANOMALY_ALERT_RATIO: 0.05,
  PRICING_ANOMALY_ALERT_MIN_LANES: 100,
};

/** An exporter over the given pool whose refreshes the test drives (runner not started). */
export function testExporter(
  pool: Pool,
  overrides: Partial<ExporterSettings> = {}
): Exporter & {
  scrape(): Promise<Map<string, number>>;
  value(name: string, labels?: Record<string, string>): Promise<number | undefined>;
} {
  const exporter = createExporter(pool, { ...testSettings, ...overrides }, createLogger('silent'));
  const scrape = async () => parseMetrics(await exporter.registry.metrics());
  return {
    ...exporter,
    scrape,
    value: async (name, labels = {}) => (await scrape()).get(seriesKey(name, labels)),
  };
}
