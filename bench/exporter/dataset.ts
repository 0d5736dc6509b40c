import type { Pool } from '../../core/db.ts';

export interface DatasetSize {
  apiRequests: number;
  quoteRequests: number;
  agentTasks: number;
  companies: number;
  usageEvents: number;
}

/** The large append-only tables the loader fills in chunks, with their secondary indexes built afterwards. */
const BULK_TABLES = ['api_requests', 'quote_requests', 'agent_tasks', 'usage_events'] as const;
/** Rows per INSERT … generate_series: bounds each statement's memory and gives a progress line per chunk. */
const CHUNK_ROWS = 5_000_000;

/** Concurrent loading connections: the chunks of all the big tables are shared out among them. */
const LOAD_WORKERS = 4;

interface Chunk {
  table: string;
  total: number;
  from: number;
  to: number;
  /** Reads rows g = $2 … $3 of $1 in all; `extra` are $4 on. */
  sql: string;
  extra: unknown[];
}

/**
 * Fills the TMS tables with generate_series in SQL: rows spread over the last 30 days, realistic label
 * cardinality (2 regions x 5 routes x status mix, 4 agent functions, 3 plans).
 *
 * Built for 100M rows on a small, shared machine: the big tables are written in chunks of CHUNK_ROWS by
 * LOAD_WORKERS connections at once; their secondary indexes are dropped first and rebuilt once at the end
 * from their own definitions (pg_get_indexdef, so the schema ends exactly as the migrations made it; one
 * sort per index instead of 100M random index insertions); the agent_tasks completion trigger is bypassed
 * with the value it would have stamped (completed_at = updated_at for a finished task); checkpoints are
 * spaced out, and ANALYZE (a sample) replaces VACUUM ANALYZE (a pass over every page). Primary keys stay:
 * ids come in order, so their btrees only grow at the right edge.
 */
export async function loadDataset(pool: Pool, size: DatasetSize, log: (msg: string) => void): Promise<void> {
  const client = await pool.connect();
  const seconds = (started: number) => `${((Date.now() - started) / 1000).toFixed(1)} s`;
  try {
    const step = async (label: string, sql: string, params: unknown[] = []) => {
      const started = Date.now();
      await client.query(sql, params);
      log(`  ${label} (${seconds(started)})`);
    };
    await client.query(`ALTER SYSTEM SET max_wal_size = '16GB'`);
    await client.query(`ALTER SYSTEM SET checkpoint_timeout = '30min'`);
    await client.query(`SELECT pg_reload_conf()`);

    const { rows: indexes } = await client.query<{ name: string; def: string }>(
      `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
         FROM pg_index i
         LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid
        WHERE i.indrelid = ANY($1::regclass[]) AND c.oid IS NULL`,
      [BULK_TABLES]
    );
    for (const index of indexes) await client.query(`DROP INDEX ${index.name}`);

    // The entitlement-history trigger, fired per row inside one big INSERT, plans its lookups while the
    // history is empty and so scans it for every row (quadratic: hours at 100k companies). The history is
    // written afterwards in one statement instead, as migration 1700000000021 does for existing accounts.
    await client.query(`ALTER TABLE org_entitlements DISABLE TRIGGER org_entitlements_history`);
    await step(
      `${size.companies.toLocaleString()} companies with entitlements`,
      `WITH c AS (
         INSERT INTO companies (name, created_at)
         SELECT 'Bench Carrier ' || g, now() - interval '400 days' FROM generate_series(1, $1) g RETURNING id
       )
       INSERT INTO org_entitlements (company_id, plan_id, stripe_customer_id, stripe_subscription_id)
       SELECT id, (ARRAY['starter','pro','enterprise'])[1 + (abs(hashtext(id::text)) % 3)], 'cus_' || id, 'sub_' || id FROM c`,
      [size.companies]
    );
    await client.query(`ALTER TABLE org_entitlements ENABLE TRIGGER org_entitlements_history`);
    await step(
      'entitlement history',
      `INSERT INTO controlroom.entitlement_history
         (company_id, plan_id, billing_status, grace_until, trial_ends_at, subscribed, valid_from)
       SELECT company_id, plan_id, billing_status, grace_until, trial_ends_at, stripe_subscription_id IS NOT NULL, started_at
         FROM org_entitlements`
    );
    // Companies numbered 0 … n-1, joined by number (an array of every id, subscripted per row, is detoasted
    // for every row once it is large: hours at 100k companies).
    await client.query(
      `CREATE UNLOGGED TABLE IF NOT EXISTS bench_company_numbers AS
         SELECT (row_number() OVER (ORDER BY id) - 1)::bigint AS n, id FROM companies`
    );
    await client.query(`CREATE UNIQUE INDEX IF NOT EXISTS bench_company_numbers_n ON bench_company_numbers (n)`);
    await client.query(`ANALYZE bench_company_numbers`);
    const chunks: Chunk[] = [];
    const addTable = (table: string, total: number, sql: string, extra: unknown[] = []) => {
      for (let from = 1; from <= total; from += CHUNK_ROWS) {
        chunks.push({ table, total, from, to: Math.min(total, from + CHUNK_ROWS - 1), sql, extra });
      }
    };
    addTable(
      'api_requests',
      size.apiRequests,
      `INSERT INTO api_requests (created_at, status_code, region, route)
       SELECT now() - (g::float8 / $1) * interval '30 days',
              CASE WHEN g % 1000 = 0 THEN 503 WHEN g % 40 = 0 THEN 404 WHEN g % 17 = 0 THEN 304 ELSE 200 END,
              CASE WHEN g % 10 < 7 THEN 'us-east-1' ELSE 'us-west-2' END,
              (ARRAY['/v1/quotes','/v1/loads','/v1/carriers','/v1/invoices','/v1/bulk-rating/jobs'])[1 + g % 5]
         FROM generate_series($2::bigint, $3::bigint) g`
    );
    addTable(
      'quote_requests',
      size.quoteRequests,
      `INSERT INTO quote_requests (created_at, response_time_ms, cached, company_id)
       SELECT now() - (g::float8 / $1) * interval '30 days', (g::bigint * 7919) % 2500 + random(), g % 5 < 2, NULL
         FROM generate_series($2::bigint, $3::bigint) g`
    );
    addTable(
      'agent_tasks',
      size.agentTasks,
      `INSERT INTO agent_tasks (fn_name, status, created_at, updated_at, completed_at)
       SELECT fn, status, at, at, CASE WHEN status IN ('success', 'failed') THEN at END
         FROM (SELECT (ARRAY['sync_carrier_docs','send_quote_email','reprice_lanes','notify_ops'])[1 + g % 4] AS fn,
                      CASE WHEN g % 100 = 0 THEN 'failed' WHEN g > $1 - 50 THEN 'queued' ELSE 'success' END AS status,
                      now() - (g::float8 / $1) * interval '30 days' AS at
                 FROM generate_series($2::bigint, $3::bigint) g) t`
    );
    addTable(
      'usage_events',
      size.usageEvents,
      `INSERT INTO usage_events (company_id, feature_key, qty, occurred_at)
       SELECT c.id, (ARRAY['rates','rates','directory','bulk_rating'])[1 + g % 4], 1 + (g % 7),
              date_trunc('month', now()) + (now() - date_trunc('month', now())) * random()
         FROM generate_series($2::bigint, $3::bigint) g
         JOIN bench_company_numbers c ON c.n = g % $4::bigint
        WHERE $1::bigint > 0 -- every chunk statement takes the total as $1`,
      [size.companies]
    );
    // Biggest first, so the workers finish together.
    chunks.sort((a, b) => b.to - b.from - (a.to - a.from));
    await client.query(`ALTER TABLE agent_tasks DISABLE TRIGGER agent_tasks_stamp_completed_at`);
    const started = Date.now();
    const done = new Map<string, number>();
    let next = 0;
    const worker = async () => {
      const connection = await pool.connect();
      try {
        await connection.query(`SET synchronous_commit = off`);
        while (next < chunks.length) {
          const chunk = chunks[next++]!;
          await connection.query(chunk.sql, [chunk.total, chunk.from, chunk.to, ...chunk.extra]);
          done.set(chunk.table, (done.get(chunk.table) ?? 0) + chunk.to - chunk.from + 1);
          log(
            `    ${chunk.table}: ${done.get(chunk.table)!.toLocaleString()} of ${chunk.total.toLocaleString()} (${seconds(started)})`
          );
        }
      } finally {
        connection.release();
      }
    };
    await Promise.all(Array.from({ length: LOAD_WORKERS }, worker));
    await client.query(`ALTER TABLE agent_tasks ENABLE TRIGGER agent_tasks_stamp_completed_at`);
    await client.query(`DROP TABLE bench_company_numbers`);
    log(`  rows (${seconds(started)})`);

    const indexStarted = Date.now();
    let nextIndex = 0;
    const indexWorker = async () => {
      const connection = await pool.connect();
      try {
        await connection.query(`SET maintenance_work_mem = '512MB'`);
        while (nextIndex < indexes.length) {
          const index = indexes[nextIndex++]!;
          const t = Date.now();
          await connection.query(index.def);
          log(`    index ${index.name} (${seconds(t)})`);
        }
      } finally {
        connection.release();
      }
    };
    await Promise.all(Array.from({ length: LOAD_WORKERS }, indexWorker));
    log(`  indexes (${seconds(indexStarted)})`);
    await step('ANALYZE', `ANALYZE`);
    await step('CHECKPOINT', `CHECKPOINT`);
  } finally {
    client.release();
  }
}

/**
 * Live traffic between refreshes: `rows` api_requests, a quarter as many quotes, a tenth as many usage
 * events, a twentieth as many finished agent tasks, and one entitlement change per thousand (an account
 * moves to the next plan: the history trigger closes its state and opens one, and the revenue ledger notes
 * it: what the business collector's refresh reads).
 */
export async function insertLiveBatch(pool: Pool, rows: number): Promise<void> {
  await pool.query(
    `INSERT INTO api_requests (status_code, region, route)
       SELECT CASE WHEN g % 50 = 0 THEN 500 ELSE 200 END, CASE WHEN g % 3 = 0 THEN 'us-west-2' ELSE 'us-east-1' END, '/v1/quotes'
         FROM generate_series(1, $1) g;
     INSERT INTO quote_requests (response_time_ms, cached) SELECT (g * 31) % 900, g % 2 = 0 FROM generate_series(1, $1 / 4) g;
     INSERT INTO agent_tasks (fn_name, status) SELECT 'send_quote_email', 'success' FROM generate_series(1, $1 / 20) g;
     INSERT INTO usage_events (company_id, feature_key, qty)
       SELECT id, 'rates', 1 FROM companies LIMIT $1 / 10;
     UPDATE org_entitlements
        SET plan_id = CASE plan_id WHEN 'starter' THEN 'pro' WHEN 'pro' THEN 'enterprise' ELSE 'starter' END
      WHERE company_id IN (SELECT company_id FROM org_entitlements ORDER BY random() LIMIT greatest($1 / 1000, 1));`.replaceAll(
      '$1',
      String(Math.floor(rows))
    )
  );
}
