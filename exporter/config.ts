import { z } from 'zod';
import { int, type ConfigIssue } from '../core/config.ts';

/** The exporter's keys (spread into the service's schema by cli/config.ts). */
export const exporterConfigShape = {
  EXPORTER_REFRESH_MS: int(5_000),
  EXPORTER_SLOW_REFRESH_MS: int(60_000),
  EXPORTER_USAGE_CAP: int(500),
  EXPORTER_GAP_GRACE_SECONDS: int(600),
  EXPORTER_SETTLE_SECONDS: int(300),
  EXPORTER_BATCH_IDS: int(1_000_000),

  // Executive scorecard KPIs (issue 17; read by the exporter's business collector, see README "Metric contract").
  /** ARPA baseline in dollars for tms_arpa_uplift_ratio (e.g. the Phase 4 figure); unset = KPI_ARPA_BASELINE_AT, else the start of the data. */
  KPI_ARPA_BASELINE_DOLLARS: z.coerce.number().positive().optional(),
  /** The instant whose ARPA is the baseline (ISO 8601 with a zone, e.g. the Phase 4 launch); unset = the first instant any account paid. */
  KPI_ARPA_BASELINE_AT: z
    .string()
    .datetime({ offset: true, message: 'an ISO 8601 instant with a zone, e.g. 2026-06-01T00:00:00Z' })
    .transform((v) => new Date(v))
    .optional(),
  /** Dollars per overage unit the Stripe meter bills, by feature: {"rates":0.5,"bulk_rating":20}; an unpriced feature makes the overage share unknown. */
  KPI_OVERAGE_UNIT_PRICES: z
    .string()
    .default('{}')
    .transform((raw, ctx) => {
      try {
        const parsed: unknown = JSON.parse(raw);
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
          const entries = Object.entries(parsed);
          if (entries.every(([, v]) => typeof v === 'number' && Number.isFinite(v) && v >= 0))
            return Object.fromEntries(entries) as Record<string, number>;
        }
      } catch {
        // reported below
      }
      ctx.addIssue({
        code: 'custom',
        message: 'a JSON object of feature key to dollars per overage unit (a number >= 0), e.g. {"rates":0.5}',
      });
      return z.NEVER;
    }),

  // Pricing drift (collectors/pricing-drift.ts). Prometheus rules cannot read this config, so the exporter
  // publishes both as gauges and PricingCandidateAnomalies compares against them.
  /** Candidate anomaly share over the last hour above which PricingCandidateAnomalies fires (0.05 = 5%). */
  PRICING_ANOMALY_ALERT_RATIO: z.coerce.number().gt(0).lt(1).default(0.05),
  /** Least lanes the candidate must have rated in that hour before the share is judged at all. */
  PRICING_ANOMALY_ALERT_MIN_LANES: int(100),
};

export type ExporterConfig = z.infer<z.ZodObject<typeof exporterConfigShape>>;

/** Checks across the exporter's keys (run by the composed schema once every key parsed). */
export function exporterConfigIssues(config: ExporterConfig): ConfigIssue[] {
  if (config.KPI_ARPA_BASELINE_DOLLARS !== undefined && config.KPI_ARPA_BASELINE_AT !== undefined) {
    return [
      {
        path: ['KPI_ARPA_BASELINE_AT'],
        message: 'set either KPI_ARPA_BASELINE_DOLLARS or KPI_ARPA_BASELINE_AT, not both',
      },
    ];
  }
  return [];
}
