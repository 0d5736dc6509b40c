import { IdRollupCollector } from './id-rollup.ts';
import { labelValues, type CollectorContext } from './context.ts';

export function apiRequestsCollector(ctx: CollectorContext): IdRollupCollector {
  return new IdRollupCollector(
    {
      name: 'api_requests',
      table: 'api_requests',
      labels: [
        { name: 'region', sql: 'region' },
        { name: 'code_class', sql: `(status_code / 100)::text || 'xx'` },
      ],
      values: [],
      publish: (totals) =>
        ctx.metrics.apiRequests.replace(
          Object.entries(totals).map(([key, [count = 0]]) => {
            const [region = '', codeClass = ''] = labelValues(key);
            return { labels: { region, code_class: codeClass }, value: count };
          })
        ),
    },
    ctx
  );
}
