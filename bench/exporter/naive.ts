import { Gauge, Registry } from 'prom-client';
import type { Pool } from '../../core/db.ts';
import { QUOTE_LATENCY_BUCKETS } from '../../exporter/metrics.ts';

/**
 * The baseline: the exporter most teams write first, where every scrape runs the aggregates over the
 * whole tables. Same metric families, same SQL semantics, no state. (It also cannot survive a purge:
 * its "counters" fall when old rows are deleted.)
 */
export function naiveRegistry(pool: Pool): Registry {
  const registry = new Registry();
  const gauge = (name: string, labelNames: string[], collect: (g: Gauge<string>) => Promise<void>) =>
    new Gauge({
      name,
      help: `${name} (naive per-scrape SQL)`,
      labelNames,
      registers: [registry],
      async collect() {
        this.reset();
        await collect(this);
      },
    });

  gauge('tms_api_requests_total', ['region', 'code_class'], async (g) => {
    const { rows } = await pool.query(
      `SELECT region, (status_code / 100)::text || 'xx' AS code_class, count(*) AS n FROM api_requests GROUP BY 1, 2`
    );
    for (const r of rows) g.set({ region: r.region, code_class: r.code_class }, Number(r.n));
  });
  gauge('tms_quote_request_duration_seconds_bucket', ['cached', 'le'], async (g) => {
    const buckets = QUOTE_LATENCY_BUCKETS.map(
      (le, i) => `count(*) FILTER (WHERE response_time_ms <= ${Math.round(le * 1000)}) AS b${i}`
    );
    const { rows } = await pool.query(
      `SELECT cached::text AS cached, count(*) AS n, ${buckets.join(', ')} FROM quote_requests GROUP BY 1`
    );
    for (const r of rows) {
      QUOTE_LATENCY_BUCKETS.forEach((le, i) => g.set({ cached: r.cached, le: String(le) }, Number(r[`b${i}`])));
      g.set({ cached: r.cached, le: '+Inf' }, Number(r.n));
    }
  });
  gauge('tms_agent_tasks_completed_total', ['fn_name', 'status'], async (g) => {
    const { rows } = await pool.query(
      `SELECT fn_name, status, count(*) AS n FROM agent_tasks WHERE status IN ('success', 'failed') GROUP BY 1, 2`
    );
    for (const r of rows) g.set({ fn_name: r.fn_name, status: r.status }, Number(r.n));
  });
  gauge('tms_agent_tasks_pending', ['fn_name'], async (g) => {
    const { rows } = await pool.query(
      `SELECT fn_name, count(*) AS n FROM agent_tasks WHERE status = 'queued' GROUP BY 1`
    );
    for (const r of rows) g.set({ fn_name: r.fn_name }, Number(r.n));
  });
  gauge('tms_usage_ratio', ['company_id', 'feature'], async (g) => {
    const { rows } = await pool.query(
      `SELECT u.company_id, u.feature_key, sum(u.qty)::float8 / pf.soft_limit AS ratio
         FROM usage_events u
         JOIN org_entitlements e ON e.company_id = u.company_id
         JOIN plan_features pf ON pf.plan_id = e.plan_id AND pf.feature_key = u.feature_key AND pf.soft_limit > 0
        WHERE u.occurred_at >= CASE WHEN pf.period = 'day' THEN date_trunc('day', now()) ELSE date_trunc('month', now()) END
        GROUP BY u.company_id, u.feature_key, pf.soft_limit
       HAVING sum(u.qty)::float8 / pf.soft_limit >= 0.8
        ORDER BY ratio DESC LIMIT 500`
    );
    for (const r of rows) g.set({ company_id: r.company_id, feature: r.feature_key }, Number(r.ratio));
  });
  gauge('tms_funnel_entered', ['funnel'], async (g) => {
    const { rows } = await pool.query(`SELECT funnel, entered FROM controlroom.funnel_30d`);
    for (const r of rows) g.set({ funnel: r.funnel }, Number(r.entered));
  });
  gauge('tms_mrr_dollars', [], async (g) => {
    const { rows } = await pool.query(`SELECT mrr_dollars FROM controlroom.revenue_now`);
    g.set(Number(rows[0]?.mrr_dollars ?? 0));
  });
  return registry;
}
