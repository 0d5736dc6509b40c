import { Registry } from 'prom-client';
import { SnapshotMetric } from './snapshot-metric.ts';

/**
 * The /metrics body: what `registry.metrics()` prints, with every exporter snapshot taken from the text
 * formatted when it was last replaced (SnapshotMetric.exposition) instead of formatting its series again.
 * Other metrics (process, HTTP, the runner's own gauges) are formatted live, as prom-client does. No SQL
 * runs here, and the cost no longer grows with the tenant series (tms_usage_ratio, tms_company_info).
 *
 * Only the Prometheus text format is served; a registry set to OpenMetrics is formatted by prom-client
 * itself (it renames counters), so the output is right either way.
 */
export async function renderMetrics(registry: Registry): Promise<string> {
  if (registry.contentType !== Registry.PROMETHEUS_CONTENT_TYPE) return registry.metrics();
  const texts = await Promise.all(
    registry.getMetricsAsArray().map((metric: unknown) =>
      // SnapshotMetric's `type` is its own union, so TypeScript cannot narrow prom-client's MetricObject to it.
      metric instanceof SnapshotMetric
        ? metric.exposition(registry)
        : registry.getSingleMetricAsString((metric as { name: string }).name)
    )
  );
  return `${texts.join('\n\n')}\n`;
}
