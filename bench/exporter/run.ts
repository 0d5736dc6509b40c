import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import type { Server } from 'node:http';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import { buildApp } from '../../cli/app.ts';
import { projectRoot } from '../../core/config.ts';
import { createPool, type Pool } from '../../core/db.ts';
import { createLogger } from '../../core/logger.ts';
import { createDatabaseIfMissing, startEmbeddedPostgres } from '../../db/embedded.ts';
import { migrate } from '../../db/migrate.ts';
import { createExporter, type Exporter } from '../../exporter/exporter.ts';
import { renderMetrics, renderMetricsBody } from '../../exporter/exposition.ts';
import { testSettings } from '../../testing/exporter.ts';
import { freePort, startTestCluster, TEMPLATE_DB } from '../../testing/postgres.ts';
import { fmtMs, percentile, timed } from '../stats.ts';
import { insertLiveBatch, loadDataset, type DatasetSize } from './dataset.ts';
import { naiveRegistry } from './naive.ts';
import { scrapeLatenciesFromThread as scrapeLatencies } from './scraper.ts';

/**
 * bench/exporter: /metrics latency and refresh cost of the incremental exporter against a naive
 * per-scrape SQL exporter, on the same Postgres and data in one run.
 *
 *   BENCH_SCALE=1      10M api_requests (the README's figures); 0.1 is a quick check; 10 is the 100M run.
 *   BENCH_DATA_DIR=…   keep the embedded cluster in this directory: the first run loads the dataset, later
 *                      runs at the same scale reuse it (the exporter's state is reset, so catch-up is
 *                      measured again from the first row). Delete the directory when done (100M rows are
 *                      about 15 GB). Without it the cluster is throwaway.
 *   BENCH_LOAD_ONLY=1  load the dataset into BENCH_DATA_DIR and stop (measure in a later run).
 *   BENCH_NAIVE_SCRAPES=n  naive scrapes (default 20, 3 from scale 5 up: each reads every table in full).
 *
 * Measured: the catch-up over all existing rows (each collector alone, until its cursor reaches the last
 * row), then steady refreshes with 5,000 new api_requests each (1,000 rows/s at the default 5 s refresh;
 * with them 1,250 quotes, 250 finished agent tasks, 500 usage events and 5 entitlement changes, the rows
 * the other collectors follow: see insertLiveBatch):
 * each collector alone, in turn (its own cost, the ≤ 10 ms target), and all together as the service runs
 * them; then /metrics while the background refresh runs with live inserts (scraped from another thread,
 * as Prometheus scrapes from another process), with its breakdown (the body's formatting alone, the
 * scrape with no refresh running, the event-loop delay while refreshing); then the naive exporter, scraped
 * the same way.
 */
const scale = Number(process.env.BENCH_SCALE ?? '1');
const size: DatasetSize = {
  apiRequests: Math.round(10_000_000 * scale),
  quoteRequests: Math.round(1_000_000 * scale),
  agentTasks: Math.round(1_000_000 * scale),
  companies: Math.round(10_000 * scale),
  usageEvents: Math.round(500_000 * scale),
};
const dataDir = process.env.BENCH_DATA_DIR ? path.resolve(process.env.BENCH_DATA_DIR) : undefined;
const OUR_SCRAPES = 1000;
const NAIVE_SCRAPES = Number(process.env.BENCH_NAIVE_SCRAPES ?? (scale >= 5 ? '3' : '20'));
const STEADY_ROUNDS = 20;
const LIVE_ROWS_PER_REFRESH = 5_000;
const TARGET_SCRAPE_P99_MS = 10;
const TARGET_COLLECTOR_REFRESH_MS = 10;
/** The tables each id-cursor collector follows: its catch-up is done when its watermark reaches their last id. */
const CURSOR_TABLES: Record<string, string> = {
  api_requests: 'api_requests',
  quote_requests: 'quote_requests',
  usage: 'usage_events',
  pricing_drift: 'controlroom.pricing_rated_lanes',
};
const MAX_CATCH_UP_REFRESHES = 10_000;
const log = (msg: string) => console.log(msg);

async function serve(registry: Registry, pool: Pool): Promise<{ url: string; server: Server }> {
  const app = buildApp({ pool, registry, logger: createLogger('silent') });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('no address');
  return { url: `http://127.0.0.1:${address.port}/metrics`, server };
}

/** The bench database: in a kept cluster (BENCH_DATA_DIR) or a throwaway one. */
async function openDatabase(): Promise<{ url: string; stop: () => Promise<void> }> {
  if (!dataDir) {
    const cluster = await startTestCluster();
    await createDatabaseIfMissing(cluster.adminUrl, 'bench', TEMPLATE_DB);
    return { url: cluster.adminUrl.replace(/\/postgres$/, '/bench'), stop: () => cluster.handle.stop() };
  }
  log(`bench/exporter: ${existsSync(dataDir) ? 'reusing' : 'creating'} the cluster in ${dataDir}`);
  const handle = await startEmbeddedPostgres({
    dataDir,
    port: await freePort(),
    database: 'bench',
    persistent: true,
    ownProcessGroup: false,
  });
  try {
    await migrate(handle.url);
  } catch (error) {
    await handle.stop();
    throw error;
  }
  return { url: handle.url, stop: () => handle.stop() };
}

/**
 * Loads the dataset unless this database already holds it (a kept cluster at the same scale). A reused
 * dataset gets the exporter's state reset, so the catch-up starts from the first row again.
 */
async function ensureDataset(pool: Pool): Promise<'loaded' | 'reused'> {
  await pool.query(
    `CREATE TABLE IF NOT EXISTS bench_exporter_dataset (size jsonb NOT NULL, loaded_at timestamptz NOT NULL)`
  );
  const { rows } = await pool.query<{ size: DatasetSize }>(`SELECT size FROM bench_exporter_dataset`);
  if (rows[0]) {
    const held = rows[0].size; // jsonb: its keys come back in its own order, so compare them one by one
    if (!(Object.keys(size) as (keyof DatasetSize)[]).every((key) => held[key] === size[key])) {
      throw new Error(
        `${dataDir} holds the dataset ${JSON.stringify(rows[0].size)}, not this scale's ${JSON.stringify(size)}: ` +
          `run at its scale, or delete the directory to load this one`
      );
    }
    await pool.query(`DELETE FROM controlroom.exporter_state; TRUNCATE controlroom.usage_daily`);
    return 'reused';
  }
  const { rows: existing } = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM (SELECT 1 FROM api_requests LIMIT 1) t`
  );
  if (Number(existing[0]!.n) > 0) {
    throw new Error(
      `${dataDir} holds a half-loaded dataset (a load was interrupted): delete the directory and run again`
    );
  }
  await loadDataset(pool, size, log);
  await pool.query(`INSERT INTO bench_exporter_dataset (size, loaded_at) VALUES ($1, now())`, [JSON.stringify(size)]);
  return 'loaded';
}

/** Last id of each followed table, read once before the catch-up. */
async function lastIds(pool: Pool): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const [collector, table] of Object.entries(CURSOR_TABLES)) {
    const { rows } = await pool.query<{ max: string | null }>(`SELECT max(id) AS max FROM ${table}`);
    out.set(collector, Number(rows[0]?.max ?? 0));
  }
  return out;
}

async function watermark(pool: Pool, collector: string): Promise<number> {
  const { rows } = await pool.query<{ w: string | null }>(
    `SELECT state->'cursor'->>'watermark' AS w FROM controlroom.exporter_state WHERE collector = $1`,
    [collector]
  );
  return Number(rows[0]?.w ?? 0);
}

async function errorCount(exporter: Exporter, collector: string): Promise<number> {
  const metric = await exporter.registry.getSingleMetric('controlroom_exporter_collect_errors_total')!.get();
  return metric.values.find((v) => v.labels.collector === collector)?.value ?? 0;
}

/** One refresh of one collector, failing the benchmark if the refresh failed (the runner only counts it). */
async function refreshTimed(exporter: Exporter, collector: string): Promise<number> {
  const errorsBefore = await errorCount(exporter, collector);
  const { ms } = await timed(() => exporter.runner.refreshOne(collector));
  if ((await errorCount(exporter, collector)) > errorsBefore)
    throw new Error(`collector ${collector} failed to refresh`);
  return ms;
}

const verdict = (met: boolean) => (met ? 'MET' : 'NOT MET');

const database = await openDatabase();
try {
  const pool = createPool(database.url, { max: 6, statementTimeoutMs: 3_600_000, applicationName: 'bench' });
  log(`bench/exporter at scale ${scale}`);
  const loadStarted = Date.now();
  const dataset = await ensureDataset(pool);
  const loadSeconds = (Date.now() - loadStarted) / 1000;
  log(`  dataset ${dataset} (${loadSeconds.toFixed(0)} s)`);
  if (process.env.BENCH_LOAD_ONLY === '1') {
    await pool.end();
    log(`BENCH_LOAD_ONLY=1: the dataset is in ${dataDir ?? 'a throwaway cluster'}; run again without it to measure`);
  } else {
    await measure(pool, dataset, loadSeconds);
  }
} finally {
  await database.stop();
}

async function measure(pool: Pool, dataset: 'loaded' | 'reused', loadSeconds: number): Promise<void> {
  // --- ours: catch-up, each collector alone ---------------------------------------------------------
  const ours = createExporter(pool, testSettings, createLogger('warn'));
  const names = ours.runner.collectorNames;
  const targets = await lastIds(pool);
  const catchUp: Record<string, { ms: number; refreshes: number; rows: number }> = {};
  for (const name of names) {
    const last = targets.get(name);
    let ms = 0;
    let refreshes = 0;
    do {
      ms += await refreshTimed(ours, name);
      refreshes++;
    } while (last !== undefined && (await watermark(pool, name)) < last && refreshes < MAX_CATCH_UP_REFRESHES);
    if (last !== undefined && (await watermark(pool, name)) < last) throw new Error(`${name} did not catch up`);
    catchUp[name] = { ms, refreshes, rows: last ?? 0 };
  }
  const catchUpTotalMs = Object.values(catchUp).reduce((sum, c) => sum + c.ms, 0);
  log(`  catch-up over all existing rows: ${fmtMs(catchUpTotalMs)} (once per database, not per scrape)`);

  // --- ours: steady refreshes per 5,000 new rows ------------------------------------------------------
  const alone = new Map<string, number[]>(names.map((n) => [n, []]));
  const sequentialTotal: number[] = [];
  for (let round = 0; round < STEADY_ROUNDS; round++) {
    await insertLiveBatch(pool, LIVE_ROWS_PER_REFRESH);
    let total = 0;
    for (const name of names) {
      const ms = await refreshTimed(ours, name);
      alone.get(name)!.push(ms);
      total += ms;
    }
    sequentialTotal.push(total);
  }
  const together: number[] = [];
  for (let round = 0; round < STEADY_ROUNDS; round++) {
    await insertLiveBatch(pool, LIVE_ROWS_PER_REFRESH);
    together.push((await timed(() => ours.runner.refreshAll())).ms);
  }

  // --- ours: /metrics while the background refresh runs with live inserts --------------------------
  // Breakdown: the body's formatting alone (in process), the scrape over HTTP with no refresh running,
  // then the scrapes measured with the refreshes and inserts running, and how long callbacks waited for
  // the event loop meanwhile (what a scrape can wait behind: refresh work, GC, the machine's other load).
  // The body as a scrape builds it (renderMetricsBody: the held sections and the live metrics' text), 1,000
  // times like the scrapes, so its p99 is not the second-worst of a handful.
  const formatMs: number[] = [];
  for (let i = 0; i < OUR_SCRAPES; i++) formatMs.push((await timed(() => renderMetricsBody(ours.registry))).ms);
  const body = await renderMetrics(ours.registry);
  const bodyBytes = Buffer.byteLength(body);
  const bodySeries = body.split('\n').filter((line) => line !== '' && !line.startsWith('#')).length;
  const oursHttp = await serve(ours.registry, pool);
  await scrapeLatencies(oursHttp.url, 20); // warm-up
  const idleScrapes = await scrapeLatencies(oursHttp.url, OUR_SCRAPES);
  ours.runner.start();
  let inserting = true;
  const inserter = (async () => {
    while (inserting) {
      await insertLiveBatch(pool, 1_000);
      await new Promise((r) => setTimeout(r, 1_000));
    }
  })();
  await scrapeLatencies(oursHttp.url, 20); // warm-up
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const oursScrapes = await scrapeLatencies(oursHttp.url, OUR_SCRAPES);
  loopDelay.disable();
  inserting = false;
  await inserter;
  await ours.runner.stop();
  oursHttp.server.close();

  // --- naive baseline ---------------------------------------------------------------------------
  const naive = await serve(naiveRegistry(pool), pool);
  await scrapeLatencies(naive.url, 1); // warm-up (caches)
  const naiveScrapes = await scrapeLatencies(naive.url, NAIVE_SCRAPES);
  naive.server.close();
  const { rows: counts } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM api_requests`);
  await pool.end();

  const byCollector = Object.fromEntries(
    names.map((name) => {
      const samples = alone.get(name)!;
      return [
        name,
        {
          catch_up_ms: catchUp[name]!.ms,
          catch_up_refreshes: catchUp[name]!.refreshes,
          catch_up_rows: catchUp[name]!.rows,
          steady_p50_ms: percentile(samples, 50),
          steady_p90_ms: percentile(samples, 90),
          steady_max_ms: Math.max(...samples),
        },
      ];
    })
  );
  const figures = {
    scale,
    size,
    api_requests_at_end: Number(counts[0]!.n),
    dataset,
    load_seconds: loadSeconds,
    ours: {
      scrapes: OUR_SCRAPES,
      scrape_p50_ms: percentile(oursScrapes, 50),
      scrape_p99_ms: percentile(oursScrapes, 99),
      breakdown: {
        format_p50_ms: percentile(formatMs, 50),
        format_p99_ms: percentile(formatMs, 99),
        body_bytes: bodyBytes,
        body_series: bodySeries,
        scrape_without_refresh_p50_ms: percentile(idleScrapes, 50),
        scrape_without_refresh_p99_ms: percentile(idleScrapes, 99),
        event_loop_delay_p50_ms: loopDelay.percentile(50) / 1e6,
        event_loop_delay_p99_ms: loopDelay.percentile(99) / 1e6,
        event_loop_delay_max_ms: loopDelay.max / 1e6,
      },
      live_rows_per_refresh: LIVE_ROWS_PER_REFRESH,
      catch_up_ms: catchUpTotalMs,
      steady_refresh_sequential_p50_ms: percentile(sequentialTotal, 50),
      steady_refresh_parallel_p50_ms: percentile(together, 50),
      steady_refresh_parallel_max_ms: Math.max(...together),
      by_collector: byCollector,
    },
    naive: {
      scrapes: NAIVE_SCRAPES,
      scrape_p50_ms: percentile(naiveScrapes, 50),
      scrape_p99_ms: percentile(naiveScrapes, 99),
      // Every naive scrape is a refresh: its DB time is the scrape.
      refresh_db_p50_ms: percentile(naiveScrapes, 50),
    },
  };
  const ratioP50 = figures.naive.scrape_p50_ms / figures.ours.scrape_p50_ms;
  const ratioP99 = figures.naive.scrape_p99_ms / figures.ours.scrape_p99_ms;
  const ratioRefresh = figures.naive.refresh_db_p50_ms / figures.ours.steady_refresh_parallel_p50_ms;

  log('');
  log(
    `dataset: ${Object.entries(size)
      .map(([k, v]) => `${k}=${v.toLocaleString()}`)
      .join(', ')} (${dataset}; ${figures.api_requests_at_end.toLocaleString()} api_requests at the end)`
  );
  log('                         incremental (ours)     naive per-scrape SQL     naive / ours');
  log(
    `/metrics p50             ${fmtMs(figures.ours.scrape_p50_ms).padEnd(22)} ${fmtMs(figures.naive.scrape_p50_ms).padEnd(24)} ${ratioP50.toFixed(0)}x`
  );
  log(
    `/metrics p99             ${fmtMs(figures.ours.scrape_p99_ms).padEnd(22)} ${fmtMs(figures.naive.scrape_p99_ms).padEnd(24)} ${ratioP99.toFixed(0)}x`
  );
  log(
    `DB time per refresh p50  ${fmtMs(figures.ours.steady_refresh_parallel_p50_ms).padEnd(22)} ${fmtMs(figures.naive.refresh_db_p50_ms).padEnd(24)} ${ratioRefresh.toFixed(0)}x`
  );
  const b = figures.ours.breakdown;
  log(
    `/metrics breakdown: body ${(b.body_bytes / 1e6).toFixed(2)} MB, ${b.body_series.toLocaleString('en-US')} series; format ${fmtMs(b.format_p50_ms)} p50 (${fmtMs(b.format_p99_ms)} p99); over HTTP with no refresh running ` +
      `${fmtMs(b.scrape_without_refresh_p50_ms)} p50, ${fmtMs(b.scrape_without_refresh_p99_ms)} p99; while refreshing, event-loop delay ` +
      `${fmtMs(b.event_loop_delay_p50_ms)} p50, ${fmtMs(b.event_loop_delay_p99_ms)} p99, ${fmtMs(b.event_loop_delay_max_ms)} max`
  );
  log('');
  log(
    `per collector (alone; steady = one refresh after ${LIVE_ROWS_PER_REFRESH.toLocaleString()} new api_requests with their quotes, ` +
      `tasks, usage events and entitlement changes (insertLiveBatch), ${STEADY_ROUNDS} rounds):`
  );
  log('collector          catch-up                         steady p50   p90          max          target ≤ 10 ms');
  let collectorsMet = true;
  for (const [name, c] of Object.entries(byCollector)) {
    const met = c.steady_p50_ms <= TARGET_COLLECTOR_REFRESH_MS;
    collectorsMet &&= met;
    const catchUpText = `${fmtMs(c.catch_up_ms)}${c.catch_up_rows ? ` (${c.catch_up_rows.toLocaleString()} rows, ${c.catch_up_refreshes} refreshes)` : ''}`;
    log(
      `${name.padEnd(18)} ${catchUpText.padEnd(32)} ${fmtMs(c.steady_p50_ms).padEnd(12)} ${fmtMs(c.steady_p90_ms).padEnd(12)} ${fmtMs(c.steady_max_ms).padEnd(12)} ${verdict(met)}`
    );
  }
  log(
    `all collectors: catch-up ${fmtMs(catchUpTotalMs)}; steady per ${LIVE_ROWS_PER_REFRESH.toLocaleString()} new rows: ` +
      `${fmtMs(figures.ours.steady_refresh_sequential_p50_ms)} one after another, ${fmtMs(figures.ours.steady_refresh_parallel_p50_ms)} p50 ` +
      `(max ${fmtMs(figures.ours.steady_refresh_parallel_max_ms)}) in parallel as the service runs them (business and evidence run once a minute)`
  );
  log(
    `(${OUR_SCRAPES} vs ${NAIVE_SCRAPES} scrapes; /metrics measured while the background refresh runs with 1,000 new rows/s)`
  );
  log('');
  const scrapeMet = figures.ours.scrape_p99_ms <= TARGET_SCRAPE_P99_MS;
  log(
    `target /metrics p99 ≤ ${TARGET_SCRAPE_P99_MS} ms: ${fmtMs(figures.ours.scrape_p99_ms)} ${verdict(scrapeMet)} (naive ${fmtMs(figures.naive.scrape_p99_ms)}, ${ratioP99.toFixed(0)}x)`
  );
  log(
    `target every collector's steady refresh p50 ≤ ${TARGET_COLLECTOR_REFRESH_MS} ms at ${figures.api_requests_at_end.toLocaleString()} rows: ${verdict(collectorsMet)}`
  );

  const outDir = path.join(projectRoot, 'bench', 'results');
  await fs.mkdir(outDir, { recursive: true });
  const file = path.join(outDir, `exporter-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await fs.writeFile(
    file,
    JSON.stringify({ ...figures, ratio: { p50: ratioP50, p99: ratioP99, refresh: ratioRefresh } }, null, 2)
  );
  log(`figures written to ${path.relative(projectRoot, file)}`);
  if (!scrapeMet || !collectorsMet) process.exitCode = 1;
}
