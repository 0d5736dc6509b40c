import type { FailoverKeys } from '../../control/failover/config.ts';
import type { EvidenceConfig } from '../../evidence/config.ts';
import type { Pool } from '../../core/db.ts';
import type { ExporterConfig } from '../config.ts';
import type { ExporterMetrics } from '../metrics.ts';

/** The exporter's keys (the scorecard's KPI_* included), and the failover and evidence settings its regions and evidence collectors report. */
export type ExporterSettings = ExporterConfig &
  Pick<FailoverKeys, 'FAILOVER_RTO_TARGET_SECONDS' | 'FAILOVER_RPO_TARGET_SECONDS'> &
  Pick<EvidenceConfig, 'EVIDENCE_DIR' | 'EVIDENCE_SCHEDULE'>;

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
