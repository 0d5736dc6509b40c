import fs from 'node:fs/promises';
import type { Server } from 'node:http';
import path from 'node:path';
import pg from 'pg';
import type { Registry } from 'prom-client';
import { buildApp } from '../../cli/app.ts';
import { projectRoot } from '../../core/config.ts';
import { createPool } from '../../core/db.ts';
import { createLogger } from '../../core/logger.ts';
import { createDatabaseIfMissing } from '../../db/embedded.ts';
import { createExporter } from '../../exporter/exporter.ts';
import { testSettings } from '../../testing/exporter.ts';
import { startTestCluster, TEMPLATE_DB } from '../../testing/postgres.ts';
import { fmtMs, percentile, scrapeLatencies, timed } from '../stats.ts';
import { insertLiveBatch, loadDataset } from './dataset.ts';
import { naiveRegistry } from './naive.ts';

/**
 * bench/exporter: /metrics latency and refresh cost of the incremental exporter against a naive
 * per-scrape SQL exporter, on the same Postgres and data in one run.
 * BENCH_SCALE=0.1 runs a tenth of the data (quick check); the README's figures are from scale 1.
 */
const scale = Number(process.env.BENCH_SCALE ?? '1');
const size = {
  apiRequests: Math.round(10_000_000 * scale),
  quoteRequests: Math.round(1_000_000 * scale),
  agentTasks: Math.round(1_000_000 * scale),
  companies: Math.round(10_000 * scale),
  usageEvents: Math.round(500_000 * scale),
};
const OUR_SCRAPES = 1000;
const NAIVE_SCRAPES = Number(process.env.BENCH_NAIVE_SCRAPES ?? '20');
const STEADY_ROUNDS = 12;
const LIVE_ROWS_PER_REFRESH = 5_000; // 1000 rows/s at the default 5 s refresh
const log = (msg: string) => console.log(msg);

async function serve(registry: Registry, pool: pg.Pool): Promise<{ url: string; server: Server }> {
  const app = buildApp({ pool, registry, logger: createLogger('silent') });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('no address');
  return { url: `http://127.0.0.1:${address.port}/metrics`, server };
}

const cluster = await startTestCluster();
try {
  await createDatabaseIfMissing(cluster.adminUrl, 'bench', TEMPLATE_DB);
  const url = cluster.adminUrl.replace(/\/postgres$/, '/bench');
  const pool = createPool(url, { max: 4, statementTimeoutMs: 600_000, applicationName: 'bench' });
  log(`bench/exporter at scale ${scale}: loading data`);
  await loadDataset(pool, size, log);

  // --- ours -------------------------------------------------------------------------------------
  const ours = createExporter(pool, testSettings, createLogger('silent'));
  const catchUp = await timed(() => ours.runner.refreshAll());
  log(`  initial catch-up over all existing rows: ${fmtMs(catchUp.ms)} (once per database, not per scrape)`);

  const refreshMs: number[] = [];
  const perCollector = new Map<string, number[]>();
  for (let round = 0; round < STEADY_ROUNDS; round++) {
    await insertLiveBatch(pool, LIVE_ROWS_PER_REFRESH);
    refreshMs.push((await timed(() => ours.runner.refreshAll())).ms);
    const durations = await ours.registry.getSingleMetric('controlroom_exporter_collect_duration_seconds')!.get();
    for (const v of durations.values) {
      const name = String(v.labels.collector);
      perCollector.set(name, [...(perCollector.get(name) ?? []), v.value * 1000]);
    }
  }

  const oursHttp = await serve(ours.registry, pool);
  ours.runner.start(); // background refreshes keep running while we scrape, with live inserts
  let inserting = true;
  const inserter = (async () => {
    while (inserting) {
      await insertLiveBatch(pool, 1_000);
      await new Promise((r) => setTimeout(r, 1_000));
    }
  })();
  await scrapeLatencies(oursHttp.url, 20); // warm-up
  const oursScrapes = await scrapeLatencies(oursHttp.url, OUR_SCRAPES);
  inserting = false;
  await inserter;
  await ours.runner.stop();
  oursHttp.server.close();

  // --- naive baseline ---------------------------------------------------------------------------
  const naive = await serve(naiveRegistry(pool), pool);
  await scrapeLatencies(naive.url, 1); // warm-up (caches)
  const naiveScrapes = await scrapeLatencies(naive.url, NAIVE_SCRAPES);
  naive.server.close();
  await pool.end();

  const figures = {
    scale,
    size,
    ours: {
      scrapes: OUR_SCRAPES,
      scrape_p50_ms: percentile(oursScrapes, 50),
      scrape_p99_ms: percentile(oursScrapes, 99),
      refresh_db_p50_ms: percentile(refreshMs, 50),
      refresh_db_max_ms: Math.max(...refreshMs),
      refresh_p50_ms_by_collector: Object.fromEntries([...perCollector].map(([k, v]) => [k, percentile(v, 50)])),
      live_rows_per_refresh: LIVE_ROWS_PER_REFRESH,
      initial_catch_up_ms: catchUp.ms,
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
  const ratioRefresh = figures.naive.refresh_db_p50_ms / figures.ours.refresh_db_p50_ms;

  log('');
  log(
    `dataset: ${Object.entries(size)
      .map(([k, v]) => `${k}=${v.toLocaleString()}`)
      .join(', ')}`
  );
  log('                         incremental (ours)     naive per-scrape SQL     naive / ours');
  log(
    `/metrics p50             ${fmtMs(figures.ours.scrape_p50_ms).padEnd(22)} ${fmtMs(figures.naive.scrape_p50_ms).padEnd(24)} ${ratioP50.toFixed(0)}x`
  );
  log(
    `/metrics p99             ${fmtMs(figures.ours.scrape_p99_ms).padEnd(22)} ${fmtMs(figures.naive.scrape_p99_ms).padEnd(24)} ${ratioP99.toFixed(0)}x`
  );
  log(
    `DB time per refresh p50  ${fmtMs(figures.ours.refresh_db_p50_ms).padEnd(22)} ${fmtMs(figures.naive.refresh_db_p50_ms).padEnd(24)} ${ratioRefresh.toFixed(0)}x`
  );
  log(
    `ours, refresh p50 by collector: ${Object.entries(figures.ours.refresh_p50_ms_by_collector)
      .map(([k, v]) => `${k} ${fmtMs(v)}`)
      .join(', ')} (all collectors run in parallel; business runs once a minute in service)`
  );
  log(
    `(ours: ${LIVE_ROWS_PER_REFRESH} new rows per refresh, worst refresh ${fmtMs(figures.ours.refresh_db_max_ms)}; ${OUR_SCRAPES} vs ${NAIVE_SCRAPES} scrapes)`
  );
  const pass = figures.ours.scrape_p99_ms < 50 && ratioP99 >= 10;
  log(`target p99 < 50 ms and >= 10x the baseline: ${pass ? 'met' : 'NOT met'}`);

  const outDir = path.join(projectRoot, 'bench', 'results');
  await fs.mkdir(outDir, { recursive: true });
  const file = path.join(outDir, `exporter-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await fs.writeFile(
    file,
    JSON.stringify({ ...figures, ratio: { p50: ratioP50, p99: ratioP99, refresh: ratioRefresh } }, null, 2)
  );
  log(`figures written to ${path.relative(projectRoot, file)}`);
  if (!pass) process.exitCode = 1;
} finally {
  await cluster.handle.stop();
}
