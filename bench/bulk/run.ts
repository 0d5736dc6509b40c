import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import { promisify } from 'node:util';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { startServices } from '../../cli/services.ts';
import { projectRoot } from '../../core/config.ts';
import { loadConfig } from '../../cli/config.ts';
import { createPool } from '../../core/db.ts';
import { createLogger } from '../../core/logger.ts';
import { createDatabaseIfMissing } from '../../db/embedded.ts';
import { insertCompany } from '../../testing/companies.ts';
import { startTestCluster, TEMPLATE_DB } from '../../testing/postgres.ts';
import { fmtMs, percentile, timed } from '../stats.ts';
import { naiveRating, progressRun, ratingRuns, RatingLogCapture, reportRating } from './rating.ts';

/**
 * bench/bulk: how long a 100k-lane CSV takes to be accepted (POST until 202, lanes stored) and how fast
 * the queued job rates it, against a naive acceptance in the same run (buffer the upload, parse it whole,
 * one INSERT per lane), on the same Postgres.
 */
const run = promisify(execFile);
const LANES = Number(process.env.BENCH_LANES ?? 100_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const NAIVE_LANES = Number(process.env.BENCH_NAIVE_LANES ?? 10_000);
// Rating: jobs of RATING_LANES queued straight into the database, RATING_RUNS times; a PROGRESS_LANES job
// for the progress cadence (0 skips it); the naive rating on NAIVE_RATING_LANES.
const RATING_LANES = Number(process.env.BENCH_RATING_LANES ?? LANES);
const RATING_RUNS = Number(process.env.BENCH_RATING_RUNS ?? RUNS);
const PROGRESS_LANES = Number(process.env.BENCH_PROGRESS_LANES ?? 1_000_000);
const NAIVE_RATING_LANES = Number(process.env.BENCH_NAIVE_RATING_LANES ?? 10_000);
// A random secret of the length start-up demands (CONTROLROOM_API_SECRET: 32 characters or more).
const SECRET = randomBytes(24).toString('hex');
const headers = {
  'x-controlroom-secret': SECRET,
  'x-grafana-context': JSON.stringify({ Login: 'bench', OrgRole: 'Editor' }),
  'content-type': 'text/csv',
};

const cities = [
  'Chicago, IL',
  'Atlanta, GA',
  'Dallas, TX',
  'Denver, CO',
  'Seattle, WA',
  'Miami, FL',
  'Memphis, TN',
  'Columbus, OH',
  'Phoenix, AZ',
  'Newark, NJ',
];
const equipment = ['van', 'reefer', 'flatbed'];
const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
const csvOf = (n: number) =>
  [
    'origin,destination,equipment,pickup_date',
    ...Array.from(
      { length: n },
      (_, i) => `"${cities[i % 10]}","${cities[(i * 7 + 3) % 10]}",${equipment[i % 3]},${tomorrow}`
    ),
  ].join('\n');

const cluster = await startTestCluster();
const ratingLog = new RatingLogCapture();
try {
  await createDatabaseIfMissing(cluster.adminUrl, 'bench_bulk', TEMPLATE_DB);
  const url = cluster.adminUrl.replace(/\/postgres$/, '/bench_bulk');
  const services = await startServices(
    url,
    loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      CONTROLROOM_AUTH: 'shared-secret',
      CONTROLROOM_API_SECRET: SECRET,
      LOG_LEVEL: 'silent',
      EXPORTER_REFRESH_MS: '60000',
    }),
    // Only the rating task's per-job line ('bulk rating job rated', info) is read, for the breakdown.
    createLogger('info', ratingLog.stream)
  );
  const pool = createPool(url, { max: 2, statementTimeoutMs: 600_000, applicationName: 'bench' });
  const base = `http://127.0.0.1:${services.port}`;
  const companyId = await insertCompany(pool, 'Bench Enterprise', 'enterprise');
  const body = csvOf(LANES);
  const csvFile = path.join(os.tmpdir(), `controlroom-bench-${LANES}.csv`);
  await fs.writeFile(csvFile, body);
  console.log(`bench/bulk: ${LANES.toLocaleString()} lanes, ${(body.length / 1e6).toFixed(1)} MB CSV, ${RUNS} runs`);

  const accept: number[] = [];
  const rateMs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // curl, in its own process: the client must not share the server's event loop.
    const submitted = await timed(async () => {
      const { stdout } = await run(
        'curl',
        [
          '-sS',
          '-w',
          '\n%{http_code}',
          ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
          '--data-binary',
          `@${csvFile}`,
          `${base}/api/bulk-rating/jobs?company_id=${companyId}`,
        ],
        { maxBuffer: 64 * 1024 * 1024 }
      );
      const [json = '', status = ''] = [
        stdout.slice(0, stdout.lastIndexOf('\n')),
        stdout.slice(stdout.lastIndexOf('\n') + 1),
      ];
      if (status !== '202') throw new Error(`upload answered ${status}: ${json.slice(0, 300)}`);
      return (JSON.parse(json) as { job: { id: string } }).job.id;
    });
    accept.push(submitted.ms);
    const started = Date.now();
    for (;;) {
      const r = await pool.query(`SELECT status FROM controlroom.bulk_jobs WHERE id = $1`, [submitted.result]);
      if (r.rows[0].status === 'succeeded') break;
      if (r.rows[0].status === 'failed') throw new Error('job failed');
      await new Promise((res) => setTimeout(res, 50));
    }
    rateMs.push(Date.now() - started);
    // Each run adds its lanes to the usage this month; the enterprise limit is 1M lanes.
  }

  // Naive acceptance: buffer, parse whole, one INSERT per lane in one transaction.
  const naiveBody = csvOf(NAIVE_LANES);
  const naive = await timed(async () => {
    const records = parse(naiveBody, { columns: true }) as Array<Record<string, string>>;
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const job = await client.query(
        `INSERT INTO controlroom.bulk_jobs (company_id, submitted_by, request_sha256, source, lanes_total, agent_task_id)
         VALUES ($1, 'bench', 'x', 'csv', $2, 0) RETURNING id`,
        [companyId, records.length]
      );
      let seq = 0;
      for (const r of records) {
        await client.query(
          `INSERT INTO controlroom.bulk_lanes (job_id, seq, line, origin, destination, equipment, pickup_date) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
          [job.rows[0].id, ++seq, seq + 1, r.origin, r.destination, r.equipment, r.pickup_date]
        );
      }
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
  });
  const naivePer100k = naive.ms * (LANES / NAIVE_LANES);

  const p50 = percentile(accept, 50);
  const lanesPerSecond = LANES / (percentile(rateMs, 50) / 1000);
  console.log('');
  console.log(
    `acceptance of ${LANES.toLocaleString()} lanes (POST -> 202)   p50 ${fmtMs(p50)}, max ${fmtMs(Math.max(...accept))}`
  );
  console.log(
    `naive acceptance (one INSERT per lane), ${NAIVE_LANES.toLocaleString()} lanes ${fmtMs(naive.ms)} -> ${fmtMs(naivePer100k)} per ${LANES.toLocaleString()} (scaled)`
  );
  console.log(`ratio naive / ours: ${(naivePer100k / p50).toFixed(1)}x`);
  console.log(`target: accepted in < 2 s: ${p50 < 2000 ? 'met' : 'NOT met'}`);

  const rating = reportRating(
    RATING_LANES,
    await ratingRuns(pool, companyId, ratingLog, RATING_LANES, RATING_RUNS),
    await naiveRating(pool, companyId, NAIVE_RATING_LANES),
    PROGRESS_LANES > 0 ? await progressRun(pool, companyId, PROGRESS_LANES) : null
  );
  const out = path.join(projectRoot, 'bench', 'results');
  await fs.mkdir(out, { recursive: true });
  await fs.writeFile(
    path.join(out, `bulk-${new Date().toISOString().replace(/[:.]/g, '-')}.json`),
    JSON.stringify(
      {
        lanes: LANES,
        accept_ms: accept,
        rate_ms: rateMs,
        naive_ms: naive.ms,
        naive_lanes: NAIVE_LANES,
        lanes_per_second: lanesPerSecond,
        ...rating.summary,
      },
      null,
      2
    )
  );
  await pool.end();
  await services.stop();
  if (p50 >= 2000 || !rating.met) process.exitCode = 1;
} finally {
  await cluster.handle.stop();
}
