import { QUOTE_LATENCY_BUCKETS } from '../metrics.ts';
import { histogramSamples } from '../snapshot-metric.ts';
import { IdRollupCollector } from './id-rollup.ts';
import { labelValues, type CollectorContext } from './context.ts';

export function quoteLatencyCollector(ctx: CollectorContext): IdRollupCollector {
  const bucketSql = QUOTE_LATENCY_BUCKETS.map(
    (le) => `count(*) FILTER (WHERE response_time_ms <= ${Math.round(le * 1000)})`
  );
  return new IdRollupCollector(
    {
      name: 'quote_requests',
      table: 'quote_requests',
      labels: [{ name: 'cached', sql: `cached::text` }],
      values: [...bucketSql, 'coalesce(sum(response_time_ms), 0) / 1000.0'],
      publish: (totals) =>
        ctx.metrics.quoteDuration.replace(
          Object.entries(totals).flatMap(([key, values]) => {
            const [cached = 'false'] = labelValues(key);
            const [count = 0, ...rest] = values;
            const buckets = rest.slice(0, QUOTE_LATENCY_BUCKETS.length);
            const sum = rest[QUOTE_LATENCY_BUCKETS.length] ?? 0;
            return histogramSamples(
              ctx.metrics.quoteDuration.name,
              QUOTE_LATENCY_BUCKETS,
              { cached },
              buckets,
              count,
              sum
            );
          })
        ),
    },
    ctx
  );
}
