import type { Pool } from '../../core/db.ts';

export interface DatasetSize {
  apiRequests: number;
  quoteRequests: number;
  agentTasks: number;
  companies: number;
  usageEvents: number;
}

/**
 * Fills the TMS tables with generate_series in SQL: rows spread over the last 30 days, realistic label
 * cardinality (2 regions x 5 routes x status mix, 4 agent functions, 3 plans).
 */
export async function loadDataset(pool: Pool, size: DatasetSize, log: (msg: string) => void): Promise<void> {
  const step = async (label: string, sql: string, params: unknown[] = []) => {
    const started = Date.now();
    await pool.query(sql, params);
    log(`  ${label} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  };
  await pool.query(`SET synchronous_commit = off`);
  await step(
    `${size.companies} companies with entitlements`,
    `WITH c AS (
       INSERT INTO companies (name, created_at)
       SELECT 'Bench Carrier ' || g, now() - interval '400 days' FROM generate_series(1, $1) g RETURNING id
     )
     INSERT INTO org_entitlements (company_id, plan_id, stripe_customer_id, stripe_subscription_id)
     SELECT id, (ARRAY['starter','pro','enterprise'])[1 + (abs(hashtext(id::text)) % 3)], 'cus_' || id, 'sub_' || id FROM c`,
    [size.companies]
  );
  await step(
    `${size.apiRequests.toLocaleString()} api_requests`,
    `INSERT INTO api_requests (created_at, status_code, region, route)
     SELECT now() - (g::float8 / $1) * interval '30 days',
            CASE WHEN g % 1000 = 0 THEN 503 WHEN g % 40 = 0 THEN 404 WHEN g % 17 = 0 THEN 304 ELSE 200 END,
            CASE WHEN g % 10 < 7 THEN 'us-east-1' ELSE 'us-west-2' END,
            (ARRAY['/v1/quotes','/v1/loads','/v1/carriers','/v1/invoices','/v1/bulk-rating/jobs'])[1 + g % 5]
       FROM generate_series(1, $1) g`,
    [size.apiRequests]
  );
  await step(
    `${size.quoteRequests.toLocaleString()} quote_requests`,
    `INSERT INTO quote_requests (created_at, response_time_ms, cached, company_id)
     SELECT now() - (g::float8 / $1) * interval '30 days', (g::bigint * 7919) % 2500 + random(), g % 5 < 2, NULL
       FROM generate_series(1, $1) g`,
    [size.quoteRequests]
  );
  await step(
    `${size.agentTasks.toLocaleString()} agent_tasks`,
    `INSERT INTO agent_tasks (fn_name, status, created_at, updated_at)
     SELECT (ARRAY['sync_carrier_docs','send_quote_email','reprice_lanes','notify_ops'])[1 + g % 4],
            CASE WHEN g % 100 = 0 THEN 'failed' WHEN g > $1 - 50 THEN 'queued' ELSE 'success' END,
            now() - (g::float8 / $1) * interval '30 days', now() - (g::float8 / $1) * interval '30 days'
       FROM generate_series(1, $1) g`,
    [size.agentTasks]
  );
  await step(
    `${size.usageEvents.toLocaleString()} usage_events this month`,
    `WITH ids AS (SELECT array_agg(id ORDER BY id) AS a, count(*) AS n FROM companies)
     INSERT INTO usage_events (company_id, feature_key, qty, occurred_at)
     SELECT ids.a[1 + (g % ids.n)], (ARRAY['rates','rates','directory','bulk_rating'])[1 + g % 4], 1 + (g % 7),
            date_trunc('month', now()) + (now() - date_trunc('month', now())) * random()
       FROM generate_series(1, $1) g, ids`,
    [size.usageEvents]
  );
  await step('VACUUM ANALYZE', `VACUUM ANALYZE`);
}

/** Live traffic during the steady-state measurement: a few thousand rows a second across the tables. */
export async function insertLiveBatch(pool: Pool, rows: number): Promise<void> {
  await pool.query(
    `INSERT INTO api_requests (status_code, region, route)
       SELECT CASE WHEN g % 50 = 0 THEN 500 ELSE 200 END, CASE WHEN g % 3 = 0 THEN 'us-west-2' ELSE 'us-east-1' END, '/v1/quotes'
         FROM generate_series(1, $1) g;
     INSERT INTO quote_requests (response_time_ms, cached) SELECT (g * 31) % 900, g % 2 = 0 FROM generate_series(1, $1 / 4) g;
     INSERT INTO agent_tasks (fn_name, status) SELECT 'send_quote_email', 'success' FROM generate_series(1, $1 / 20) g;`.replaceAll(
      '$1',
      String(Math.floor(rows))
    )
  );
}
