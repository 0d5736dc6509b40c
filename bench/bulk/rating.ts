import { Writable } from 'node:stream';
import type { Pool } from '../../core/db.ts';
import { withTransaction } from '../../core/db.ts';
import { enqueueJob } from '../../core/jobs.ts';
import { DEFAULT_CHUNK_LANES } from '../../control/bulk/ingest.ts';
import { BULK_RATE_TASK } from '../../control/bulk/jobs.ts';
import type { RatingStats } from '../../control/bulk/process.ts';
import { createRatingService } from '../../control/rating/index.ts';
import { fmtMs, percentile, timed } from '../stats.ts';

/**
 * The rating half of bench/bulk: queued -> succeeded through the running service's queue worker.
 * Jobs are written straight into the database (lanes by generate_series, the queue job in the same
 * transaction, as an upload does), so the figure is the rating alone, whatever acceptance costs.
 * Times come from the database's clock: from the commit that queued the job to the job's finished_at.
 */
export const RATING_TARGET_LANES_PER_SECOND = 150_000;
export const PROGRESS_TARGET_MS = 1_000;

/** The ten cities every bulk benchmark lane runs between (acceptance and rating share them). */
export const CITIES = [
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

/** Captures the service's 'bulk rating job rated' log lines (pino JSON) by job id. */
export class RatingLogCapture {
  private readonly stats = new Map<string, RatingStats>();
  readonly stream = new Writable({
    write: (chunk: Buffer, _encoding, done) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.includes('bulk rating job rated')) continue;
        const entry = JSON.parse(line) as RatingStats & { jobId: string };
        this.stats.set(entry.jobId, entry);
      }
      done();
    },
  });

  of(jobId: string): RatingStats | undefined {
    return this.stats.get(jobId);
  }
}

/**
 * Creates a job of `lanes` pending lanes; with `queue`, queues it in the same transaction. The lanes are
 * stored as an upload stores them, in chunks of DEFAULT_CHUNK_LANES (the service's BULK_RATE_BATCH), or
 * with `perLane` one bulk_lane_rows row each (the naive baseline's storage).
 */
export async function createJob(
  pool: Pool,
  companyId: string,
  lanes: number,
  queue: boolean,
  perLane = false
): Promise<{ jobId: string; queuedAt: Date }> {
  const jobId = await withTransaction(pool, 'READ COMMITTED', async (client) => {
    const task = await client.query<{ id: string }>(
      `INSERT INTO agent_tasks (company_id, fn_name, payload, status) VALUES ($1, 'bulk_rating', '{}', 'queued') RETURNING id`,
      [companyId]
    );
    const { rows } = await client.query<{ id: string }>(
      `INSERT INTO controlroom.bulk_jobs (company_id, submitted_by, request_sha256, source, lanes_total, agent_task_id)
       VALUES ($1, 'bench', 'bench', 'csv', $2, $3) RETURNING id`,
      [companyId, lanes, task.rows[0]!.id]
    );
    const id = rows[0]!.id;
    if (perLane) {
      await client.query(
        `INSERT INTO controlroom.bulk_lane_rows (job_id, seq, line, origin, destination, equipment, pickup_date)
         SELECT $1, s, s + 1, ($3::text[])[1 + s % 10], ($3::text[])[1 + (s * 7 + 3) % 10],
                (ARRAY['van', 'reefer', 'flatbed'])[1 + s % 3], current_date + 1
           FROM generate_series(1, $2) AS s`,
        [id, lanes, CITIES]
      );
    } else {
      await client.query(
        `INSERT INTO controlroom.bulk_lane_chunks (job_id, chunk, first_seq, lanes, lanes_text)
         SELECT $1, c + 1, c * $4 + 1, count(*),
                string_agg(concat_ws(E'\\t', s + 1, ($3::text[])[1 + s % 10], ($3::text[])[1 + (s * 7 + 3) % 10],
                                     (ARRAY['van', 'reefer', 'flatbed'])[1 + s % 3],
                                     to_char(current_date + 1, 'YYYY-MM-DD')), E'\\n' ORDER BY s)
           FROM generate_series(1, $2) AS s, LATERAL (SELECT (s - 1) / $4 AS c) k
          GROUP BY c`,
        [id, lanes, CITIES, DEFAULT_CHUNK_LANES]
      );
    }
    if (queue) await enqueueJob(client, BULK_RATE_TASK, { jobId: id }, { jobKey: `${BULK_RATE_TASK}:${id}` });
    return id;
  });
  // The job is queued from the commit: the clock right after it (a round trip late, well under 1 ms).
  const { rows } = await pool.query<{ now: Date }>(`SELECT clock_timestamp() AS now`);
  return { jobId, queuedAt: rows[0]!.now };
}

interface JobTimes {
  status: string;
  started_at: Date | null;
  finished_at: Date | null;
  progress: number;
  lanes_total: number;
}

const jobTimes = async (pool: Pool, jobId: string) =>
  (
    await pool.query<JobTimes>(
      `SELECT status, started_at, finished_at, lanes_rated + lanes_failed AS progress, lanes_total
         FROM controlroom.bulk_jobs WHERE id = $1`,
      [jobId]
    )
  ).rows[0]!;

/**
 * Waits for a job to finish, polling its progress every `pollMs`; returns its times and the longest
 * wait between two progress changes while it ran (from started_at to finished_at).
 */
export async function followJob(
  pool: Pool,
  jobId: string,
  pollMs: number,
  timeoutMs: number
): Promise<{ job: JobTimes; maxProgressGapMs: number; progressUpdates: number }> {
  const deadline = Date.now() + timeoutMs;
  let lastProgress = -1;
  let lastChange = 0;
  let maxGap = 0;
  let updates = 0;
  for (;;) {
    const job = await jobTimes(pool, jobId);
    const now = performance.now();
    if (job.status === 'failed') throw new Error(`bench job ${jobId} failed`);
    if (job.started_at && lastChange === 0) lastChange = now;
    if (job.progress !== lastProgress) {
      if (lastChange > 0 && lastProgress >= 0) maxGap = Math.max(maxGap, now - lastChange);
      if (lastProgress >= 0) updates++;
      lastProgress = job.progress;
      lastChange = now;
    }
    if (job.status === 'succeeded') return { job, maxProgressGapMs: maxGap, progressUpdates: updates };
    if (Date.now() > deadline) throw new Error(`bench job ${jobId} did not finish in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/**
 * The naive rating of the same run: lanes stored one row each (bulk_lane_rows), read the pending lanes,
 * rate each, one UPDATE per lane (with the counters), committed per 5,000 lanes. Returns lanes per second.
 */
export async function naiveRating(pool: Pool, companyId: string, lanes: number): Promise<number> {
  const { jobId } = await createJob(pool, companyId, lanes, false, true);
  const rate = await createRatingService().raterForJob(pool);
  const { ms } = await timed(async () => {
    for (;;) {
      const done = await withTransaction(pool, 'READ COMMITTED', async (client) => {
        const { rows } = await client.query<{
          seq: number;
          origin: string;
          destination: string;
          equipment: 'van' | 'reefer' | 'flatbed';
          pickup_date: string;
        }>(
          `SELECT seq, origin, destination, equipment, to_char(pickup_date, 'YYYY-MM-DD') AS pickup_date
             FROM controlroom.bulk_lane_rows WHERE job_id = $1 AND status = 'pending' ORDER BY seq LIMIT 5000`,
          [jobId]
        );
        for (const lane of rows) {
          const r = rate({ ...lane, pickupDate: lane.pickup_date });
          await client.query(
            `UPDATE controlroom.bulk_lane_rows SET status = 'rated', miles = $3, linehaul = $4, fuel = $5, total = $6,
                    per_mile = $7, model_version = $8, arm = $9, flags = $10 WHERE job_id = $1 AND seq = $2`,
            [jobId, lane.seq, r.miles, r.linehaul, r.fuel, r.total, r.perMile, r.modelVersion, r.arm, r.flags]
          );
        }
        await client.query(`UPDATE controlroom.bulk_jobs SET lanes_rated = lanes_rated + $2 WHERE id = $1`, [
          jobId,
          rows.length,
        ]);
        return rows.length === 0;
      });
      if (done) break;
    }
  });
  await pool.query(`DELETE FROM controlroom.bulk_jobs WHERE id = $1`, [jobId]);
  return (lanes * 1000) / ms;
}

export interface RatingRun {
  endToEndMs: number;
  pickupMs: number;
  finishMs: number;
  stats: RatingStats | undefined;
}

/** `runs` jobs of `lanes` lanes through the service's queue, one after the other. */
export async function ratingRuns(
  pool: Pool,
  companyId: string,
  capture: RatingLogCapture,
  lanes: number,
  runs: number
): Promise<RatingRun[]> {
  const out: RatingRun[] = [];
  for (let i = 0; i < runs; i++) {
    const { jobId, queuedAt } = await createJob(pool, companyId, lanes, true);
    const { job } = await followJob(pool, jobId, 20, 600_000);
    const stats = capture.of(jobId);
    const endToEndMs = job.finished_at!.getTime() - queuedAt.getTime();
    const pickupMs = job.started_at!.getTime() - queuedAt.getTime();
    out.push({ endToEndMs, pickupMs, finishMs: endToEndMs - pickupMs - (stats?.wallMs ?? 0), stats });
  }
  return out;
}

/** Prints the rating figures against the targets and the naive baseline; returns whether all are met. */
export function reportRating(
  lanes: number,
  runs: RatingRun[],
  naiveLanesPerSecond: number,
  progress: { lanes: number; maxProgressGapMs: number; progressUpdates: number; endToEndMs: number } | null
): { met: boolean; summary: Record<string, unknown> } {
  const p50 = percentile(
    runs.map((r) => r.endToEndMs),
    50
  );
  const median = runs.find((r) => r.endToEndMs === p50)!;
  const lanesPerSecond = (lanes * 1000) / p50;
  const rateMet = lanesPerSecond >= RATING_TARGET_LANES_PER_SECOND;
  const progressMet = progress ? progress.maxProgressGapMs <= PROGRESS_TARGET_MS : true;
  console.log('');
  console.log(
    `job rating end to end (queued -> succeeded), ${lanes.toLocaleString()} lanes: p50 ${fmtMs(p50)} = ${Math.round(lanesPerSecond).toLocaleString()} lanes/s (runs: ${runs.map((r) => fmtMs(r.endToEndMs)).join(', ')})`
  );
  console.log(
    `naive rating (one UPDATE per lane) ${Math.round(naiveLanesPerSecond).toLocaleString()} lanes/s; ratio ours / naive: ${(lanesPerSecond / naiveLanesPerSecond).toFixed(1)}x`
  );
  console.log(`target: >= ${RATING_TARGET_LANES_PER_SECOND.toLocaleString()} lanes/s: ${rateMet ? 'MET' : 'NOT MET'}`);
  const s = median.stats;
  if (s) {
    console.log(`breakdown of the p50 run (read, rate and write overlap: the loop waits only for the slowest):`);
    console.log(`  queue pickup           ${fmtMs(median.pickupMs)}`);
    console.log(
      `  rating loop            ${fmtMs(s.wallMs)} wall, ${s.batches} batches: read lanes ${fmtMs(s.readMs)}, rate ${fmtMs(s.rateMs)}, write results ${fmtMs(s.writeMs)}, commit ${fmtMs(s.commitMs)}`
    );
    console.log(
      `                         waited for reads ${fmtMs(s.waitReadMs)}, for writes to commit ${fmtMs(s.waitWriteMs)}`
    );
    console.log(`  finish (job, task, audit) and clock skew ${fmtMs(median.finishMs)}`);
  }
  if (progress) {
    console.log(
      `progress of a ${progress.lanes.toLocaleString()}-lane job: ${progress.progressUpdates} updates in ${fmtMs(progress.endToEndMs)}, longest gap ${fmtMs(progress.maxProgressGapMs)} (polled every 100 ms)`
    );
    console.log(`target: progress at least every ${PROGRESS_TARGET_MS} ms: ${progressMet ? 'MET' : 'NOT MET'}`);
  }
  return {
    met: rateMet && progressMet,
    summary: {
      lanes,
      rating_end_to_end_ms: runs.map((r) => r.endToEndMs),
      rating_lanes_per_second: lanesPerSecond,
      rating_breakdown: median.stats ?? null,
      queue_pickup_ms: median.pickupMs,
      naive_rating_lanes_per_second: naiveLanesPerSecond,
      rating_target_met: rateMet,
      progress: progress ? { ...progress, target_met: progressMet } : null,
    },
  };
}

/** The 1M-lane job: how often its progress moves while it is rated. */
export async function progressRun(pool: Pool, companyId: string, lanes: number) {
  const { jobId, queuedAt } = await createJob(pool, companyId, lanes, true);
  const { job, maxProgressGapMs, progressUpdates } = await followJob(pool, jobId, 100, 1_800_000);
  return { lanes, maxProgressGapMs, progressUpdates, endToEndMs: job.finished_at!.getTime() - queuedAt.getTime() };
}
