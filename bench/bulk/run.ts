import { randomBytes, randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import { promisify } from 'node:util';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { startServices } from '../../cli/services.ts';
import { projectRoot } from '../../core/config.ts';
import { loadConfig } from '../../cli/config.ts';
import { createPool, type Pool } from '../../core/db.ts';
import { createLogger } from '../../core/logger.ts';
import { createDatabaseIfMissing } from '../../db/embedded.ts';
import { DEFAULT_CHUNK_LANES, ingestCsv, LaneCopy, LaneCounter } from '../../control/bulk/ingest.ts';
import { checkLocation } from '../../control/rating/locations.ts';
import { insertCompany } from '../../testing/companies.ts';
import { startTestCluster, TEMPLATE_DB } from '../../testing/postgres.ts';
import { fmtMs, percentile, timed } from '../stats.ts';
import { CITIES as cities, naiveRating, progressRun, ratingRuns, RatingLogCapture, reportRating } from './rating.ts';

/**
 * bench/bulk: how long a 100k-lane CSV takes to be accepted (POST until 202, lanes stored) and how fast
 * the queued job rates it, against a naive acceptance in the same run (buffer the upload, parse it whole,
 * one INSERT per lane), on the same Postgres. Acceptance also runs once at BENCH_BIG_LANES (1M; 0 skips
 * it) with the server's peak RSS, and is broken down into its parts measured alone: parse, validate
 * (in process, no database), COPY and commit (the database alone, rows encoded beforehand). The request
 * overlaps the COPY with parsing and validating, so the parts add up to more than the whole.
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
const BIG_LANES = Number(process.env.BENCH_BIG_LANES ?? 1_000_000);
const ACCEPT_TARGET_MS = 500;
const BIG_ACCEPT_TARGET_MS = 5_000;
// A random secret of the length start-up demands (CONTROLROOM_API_SECRET: 32 characters or more).
const SECRET = randomBytes(24).toString('hex');
const headers = {
  'x-controlroom-secret': SECRET,
  'x-grafana-context': JSON.stringify({ Login: 'bench', OrgRole: 'Editor' }),
  'content-type': 'text/csv',
};

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
      BULK_MAX_LANES: String(Math.max(LANES, BIG_LANES)),
      BULK_MAX_UPLOAD_BYTES: String(Math.max(LANES, BIG_LANES) * 64),
    }),
    // Only the rating task's per-job line ('bulk rating job rated', info) is read, for the breakdown.
    createLogger('info', ratingLog.stream)
  );
  const pool = createPool(url, { max: 2, statementTimeoutMs: 600_000, applicationName: 'bench' });
  const base = `http://127.0.0.1:${services.port}`;
  const companyId = await insertCompany(pool, 'Bench Enterprise', 'enterprise');
  const body = csvOf(LANES);
  const csvFile = path.join(os.tmpdir(), `controlroom-bench-${process.pid}-${LANES}.csv`);
  await fs.writeFile(csvFile, body);
  console.log(`bench/bulk: ${LANES.toLocaleString()} lanes, ${(body.length / 1e6).toFixed(1)} MB CSV, ${RUNS} runs`);

  const accept: number[] = [];
  const rateMs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const submitted = await timed(() => postCsv(base, companyId, csvFile));
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

  // Naive acceptance: buffer, parse whole, one INSERT per lane (a row per lane) in one transaction.
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
          `INSERT INTO controlroom.bulk_lane_rows (job_id, seq, line, origin, destination, equipment, pickup_date) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
          [job.rows[0].id, ++seq, seq + 1, r.origin, r.destination, r.equipment, r.pickup_date]
        );
      }
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
  });
  const naivePer100k = naive.ms * (LANES / NAIVE_LANES);
  const breakdown = await acceptanceBreakdown(pool, companyId, body);
  const big = BIG_LANES > 0 ? await acceptBig(base, companyId) : null;

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
  printAcceptance(p50, naivePer100k, breakdown, big);

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
        accept_breakdown_ms: breakdown,
        big,
      },
      null,
      2
    )
  );
  await pool.end();
  await services.stop();
  if (p50 > ACCEPT_TARGET_MS || (big && big.ms > BIG_ACCEPT_TARGET_MS) || !rating.met) process.exitCode = 1;
} finally {
  await cluster.handle.stop();
}

// ---------------------------------------------------------------------------------------------------
// Acceptance (POST -> 202): the upload, its breakdown and the big file.

/** POSTs a CSV file with curl, in its own process (the client must not share the server's event loop); returns the job id. */
async function postCsv(base: string, companyId: string, file: string): Promise<string> {
  const { stdout } = await run(
    'curl',
    [
      '-sS',
      '-w',
      '\n%{http_code}',
      ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
      '--data-binary',
      `@${file}`,
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
}

interface AcceptBreakdown {
  /** The CSV reader alone: every row read, none validated (the header names a fifth column, so each row is refused by its count). */
  parse: number;
  /** Reading and validating, minus `parse`. */
  validate: number;
  /** COPY of the lanes into bulk_lane_chunks (chunks built from values encoded beforehand), without reading the file. */
  copy: number;
  commit: number;
}

/** The parts of acceptance, each measured alone on the same file (medians of three). */
async function acceptanceBreakdown(pool: Pool, companyId: string, csv: string): Promise<AcceptBreakdown> {
  const today = new Date().toISOString().slice(0, 10);
  const limits = { maxBytes: Number.MAX_SAFE_INTEGER, maxLanes: Number.MAX_SAFE_INTEGER, maxErrorsReported: 1_000 };
  const bytes = Buffer.from(csv);
  const chunks = () => {
    const out: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += 64 * 1024) out.push(bytes.subarray(at, at + 64 * 1024));
    return Readable.from(out);
  };
  const unvalidated = Buffer.from(csv.replace(/^[^\n]*/, (header) => `${header},notes`));
  const parseOnly = () => Readable.from([unvalidated]);
  const median = async (work: () => Promise<unknown>) => {
    const samples: number[] = [];
    for (let i = 0; i < 3; i++) samples.push((await timed(work)).ms);
    return percentile(samples, 50);
  };
  const parseMs = await median(() => ingestCsv(parseOnly(), limits, checkLocation, today, new LaneCounter()));
  const readMs = await median(() => ingestCsv(chunks(), limits, checkLocation, today, new LaneCounter()));

  const copies: number[] = [];
  const commits: number[] = [];
  for (let i = 0; i < 3; i++) {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const jobId = randomUUID();
      await client.query(
        `INSERT INTO controlroom.bulk_jobs (id, company_id, submitted_by, request_sha256, source, lanes_total, agent_task_id)
         VALUES ($1, $2, 'bench', 'x', 'csv', $3, 0)`,
        [jobId, companyId, LANES]
      );
      const encode = (v: string) => Buffer.from(v);
      const origins = cities.map(encode);
      const kinds = equipment.map(encode);
      const date = encode(tomorrow);
      copies.push(
        (
          await timed(async () => {
            const copy = await LaneCopy.open(client, jobId, DEFAULT_CHUNK_LANES);
            for (let seq = 1; seq <= LANES; seq++) {
              copy.addEncoded(seq + 1, origins[seq % 10]!, origins[(seq * 7 + 3) % 10]!, kinds[seq % 3]!, date);
              const wait = copy.backpressure();
              if (wait) await wait;
            }
            await copy.finish();
          })
        ).ms
      );
      // Committed, then deleted: the commit is what a real job pays (WAL flush).
      commits.push((await timed(() => client.query('COMMIT'))).ms);
      await client.query(`DELETE FROM controlroom.bulk_jobs WHERE id = $1`, [jobId]);
    } finally {
      client.release();
    }
  }
  return {
    parse: parseMs,
    validate: Math.max(0, readMs - parseMs),
    copy: percentile(copies, 50),
    commit: percentile(commits, 50),
  };
}

/** One upload of BIG_LANES lanes; the server's peak RSS above what it used before (sampled every 10 ms). */
async function acceptBig(
  base: string,
  companyId: string
): Promise<{ lanes: number; mb: number; ms: number; rssBeforeMb: number; peakRssDeltaMb: number }> {
  const file = path.join(os.tmpdir(), `controlroom-bench-${process.pid}-${BIG_LANES}.csv`);
  const out = await fs.open(file, 'w');
  try {
    await out.write('origin,destination,equipment,pickup_date\n');
    for (let from = 0; from < BIG_LANES; from += 100_000) {
      const lines = Array.from(
        { length: Math.min(100_000, BIG_LANES - from) },
        (_, k) =>
          `"${cities[(from + k) % 10]}","${cities[((from + k) * 7 + 3) % 10]}",${equipment[(from + k) % 3]},${tomorrow}\n`
      );
      await out.write(lines.join(''));
    }
  } finally {
    await out.close();
  }
  const { size } = await fs.stat(file);
  (globalThis as { gc?: () => void }).gc?.();
  const before = process.memoryUsage.rss();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 10);
  try {
    const { ms } = await timed(() => postCsv(base, companyId, file));
    peak = Math.max(peak, process.memoryUsage.rss());
    return {
      lanes: BIG_LANES,
      mb: size / 1e6,
      ms,
      rssBeforeMb: before / 1e6,
      peakRssDeltaMb: (peak - before) / 1e6,
    };
  } finally {
    clearInterval(sampler);
    await fs.rm(file, { force: true });
  }
}

function printAcceptance(
  p50: number,
  naivePer100k: number,
  breakdown: AcceptBreakdown,
  big: Awaited<ReturnType<typeof acceptBig>> | null
): void {
  const verdict = (ok: boolean) => (ok ? 'MET' : 'NOT MET');
  console.log('');
  console.log(`acceptance target: ${LANES.toLocaleString()} lanes POST -> 202 p50 <= ${fmtMs(ACCEPT_TARGET_MS)}`);
  console.log(
    `  ours p50 ${fmtMs(p50)}: ${verdict(p50 <= ACCEPT_TARGET_MS)}; naive baseline (same run) ${fmtMs(naivePer100k)}; ratio ${(naivePer100k / p50).toFixed(1)}x`
  );
  console.log('  breakdown, each part measured alone (the request overlaps COPY with parse + validate):');
  console.log(`    parse     ${fmtMs(breakdown.parse)}`);
  console.log(`    validate  ${fmtMs(breakdown.validate)}`);
  console.log(`    COPY      ${fmtMs(breakdown.copy)}`);
  console.log(`    commit    ${fmtMs(breakdown.commit)}`);
  if (big) {
    console.log(
      `acceptance target: ${big.lanes.toLocaleString()} lanes (${big.mb.toFixed(0)} MB) <= ${fmtMs(BIG_ACCEPT_TARGET_MS)}, memory bounded`
    );
    console.log(
      `  ours ${fmtMs(big.ms)}: ${verdict(big.ms <= BIG_ACCEPT_TARGET_MS)}; naive baseline (scaled) ${fmtMs((naivePer100k * big.lanes) / LANES)}; server peak RSS +${big.peakRssDeltaMb.toFixed(0)} MB over ${big.rssBeforeMb.toFixed(0)} MB (the file is ${big.mb.toFixed(0)} MB)`
    );
  }
}
