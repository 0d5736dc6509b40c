import type { JobHelpers, Task } from 'graphile-worker';
import { audit } from '../../core/audit.ts';
import type { Pool } from '../../core/db.ts';
import { withTransaction } from '../../core/db.ts';
import type { Logger } from '../../core/logger.ts';
import type { BULK_RATE_TASK } from './jobs.ts';
import type { Lane } from '../rating/engine.ts';
import { FLAG_BITS, RatedBatch } from '../rating/engine.ts';
import type { RateLane, RateLanes, RatingService } from './rater.ts';
import type { Equipment } from './lanes.ts';

const ACTOR = 'controlroom:bulk-rating';

/**
 * Passes over a job's lanes before the task gives up (and the queue retries it). A pass rates every lane
 * pending when it reads it, so a second pass only runs when another worker held lanes it then did not
 * rate (it rolled back); more than a few means something keeps undoing the work.
 */
const MAX_PASSES = 5;

/**
 * Batches written at once, each on its own connection. Writing is the slowest step (a new row version
 * and two index entries per lane), so two writers let the database use a second core; the job's
 * counters row serialises only their last, cheap statement part. Memory stays bounded: at most this many
 * rated batches plus two read ones are held.
 */
const WRITES_IN_FLIGHT = 2;

/** Where one job's rating time went, logged when the job finishes (bench/bulk prints it). */
export interface RatingStats {
  lanes: number;
  batches: number;
  /** Wall time from the first read to the last commit. */
  wallMs: number;
  /** Reading pending lanes (statement and row parsing), summed over batches. */
  readMs: number;
  /** Rating them and encoding the results (synchronous, on the event loop). */
  rateMs: number;
  /** The UPDATE of the lanes and the job's counters. */
  writeMs: number;
  /** COMMIT of each batch. */
  commitMs: number;
  /** Time the loop waited for the next batch's read, or for the previous batch's write to commit. */
  waitReadMs: number;
  waitWriteMs: number;
}

/** A batch of lanes read from the job: at most `batchSize` lanes, in seq order. */
interface ReadBatch {
  /** The seq range the batch covers, [from, to]; lanes in it that were no longer pending are absent. */
  from: number;
  to: number;
  rows: Array<[seq: number, origin: string, destination: string, equipment: Equipment, pickupDate: string]>;
}

/** A rated batch, as the arrays of the UPDATE's unnest (numbers pre-encoded as array literals). */
interface RatedRows {
  from: number;
  to: number;
  lanes: number;
  params: unknown[];
}

/**
 * Rates a job's lanes in committed batches. A batch is one transaction with one statement: it writes the
 * results of lanes that are still pending and moves the job's counters by exactly the lanes it changed.
 * So after a kill -9 the job (released by the queue on restart) continues with the lanes still pending:
 * none lost, none rated twice, and two workers that ever ran the same job could not double a lane
 * either (the second one's UPDATE finds it no longer pending and counts nothing).
 *
 * The lanes are read by seq range, not by locking pending rows, and the batches are pipelined: while
 * batch n is written and committed on one connection, batch n+1 is read on another and rated on the
 * event loop, so the database's write time and the engine's time overlap instead of adding up. A batch
 * is rated from lanes read outside its transaction: a lane's input columns never change after upload,
 * and the pending check is made again where it counts, in the UPDATE.
 */
export function bulkRateTask(
  pool: Pool,
  rating: RatingService,
  batchSize: number,
  logger: Logger
): Task<typeof BULK_RATE_TASK> {
  return async ({ jobId }, helpers: JobHelpers) => {
    const started = await pool.query<{ agent_task_id: string; company_id: string; status: string }>(
      `UPDATE controlroom.bulk_jobs SET status = 'running', started_at = coalesce(started_at, now())
        WHERE id = $1 AND status IN ('queued', 'running') RETURNING agent_task_id, company_id, status`,
      [jobId]
    );
    const job = started.rows[0];
    if (!job) return; // already finished (a duplicate delivery of the job)
    await pool.query(`UPDATE agent_tasks SET status = 'running' WHERE id = $1 AND status = 'queued'`, [
      job.agent_task_id,
    ]);

    try {
      const stats = await rateJob(pool, jobId, rating, batchSize);
      await finish(pool, jobId, job.agent_task_id, job.company_id, null);
      logger.info(
        { jobId, ...stats, lanesPerSecond: stats.wallMs > 0 ? Math.round((stats.lanes * 1000) / stats.wallMs) : null },
        'bulk rating job rated'
      );
    } catch (error) {
      // The queue retries the job; only when it has no attempts left is the job given up as failed.
      if (helpers.job.attempts >= helpers.job.max_attempts) {
        await finish(pool, jobId, job.agent_task_id, job.company_id, (error as Error).message);
      }
      logger.warn({ err: error, jobId, attempt: helpers.job.attempts }, 'bulk rating job failed');
      throw error;
    }
  };
}

/**
 * Rates every pending lane of a job; returns where the time went. Throws when a statement fails. A job's
 * lanes are stored either lane by lane (bulk_lane_rows: jobs from before migration 1700000000033, or
 * lanes written through the bulk_lanes view) or in chunks (bulk_lane_chunks: every upload since); the
 * rater for the storage found is loaded once, so the whole job is priced by one snapshot of the models.
 */
export async function rateJob(
  pool: Pool,
  jobId: string,
  rating: Pick<RatingService, 'raterForJob' | 'batchRaterForJob'>,
  batchSize: number
): Promise<RatingStats> {
  const stats: RatingStats = {
    lanes: 0,
    batches: 0,
    wallMs: 0,
    readMs: 0,
    rateMs: 0,
    writeMs: 0,
    commitMs: 0,
    waitReadMs: 0,
    waitWriteMs: 0,
  };
  const began = performance.now();
  let rate: RateLane | null = null;
  for (let pass = 0; ; pass++) {
    const { rows } = await pool.query<{ first: number | null; last: number | null }>(
      `SELECT (SELECT min(seq) FROM controlroom.bulk_lane_rows WHERE job_id = $1 AND status = 'pending') AS first,
              (SELECT max(seq) FROM controlroom.bulk_lane_rows WHERE job_id = $1) AS last`,
      [jobId]
    );
    const { first, last } = rows[0]!;
    if (first === null || last === null) break;
    if (pass === MAX_PASSES) {
      throw new Error(`bulk job ${jobId}: lanes still pending after ${MAX_PASSES} passes (from seq ${first})`);
    }
    rate ??= await rating.raterForJob(pool);
    const complete = await ratePass(pool, jobId, rate, batchSize, first, last, stats);
    if (complete) break;
  }
  let rateLanes: RateLanes | null = null;
  for (let pass = 0; ; pass++) {
    const { rows } = await pool.query<{ first: number | null; last: number | null; lanes: number | null }>(
      `SELECT (SELECT min(c.chunk) FROM controlroom.bulk_lane_chunks c
                WHERE c.job_id = $1
                  AND NOT EXISTS (SELECT 1 FROM controlroom.bulk_lane_results r WHERE r.job_id = c.job_id AND r.chunk = c.chunk)) AS first,
              (SELECT max(chunk) FROM controlroom.bulk_lane_chunks WHERE job_id = $1) AS last,
              (SELECT max(lanes) FROM controlroom.bulk_lane_chunks WHERE job_id = $1 AND chunk = 1) AS lanes`,
      [jobId]
    );
    const { first, last, lanes } = rows[0]!;
    if (first === null || last === null) break;
    if (pass === MAX_PASSES) {
      throw new Error(`bulk job ${jobId}: chunks still unrated after ${MAX_PASSES} passes (from chunk ${first})`);
    }
    rateLanes ??= await rating.batchRaterForJob(pool);
    // Whole chunks per batch, about batchSize lanes (the upload made chunks of the BULK_RATE_BATCH then).
    const chunksPerBatch = Math.max(1, Math.floor(batchSize / Math.max(1, lanes ?? batchSize)));
    const complete = await rateChunkPass(pool, jobId, rateLanes, chunksPerBatch, first, last, stats);
    if (complete) break;
  }
  stats.wallMs = performance.now() - began;
  return stats;
}

/**
 * One pass over seq [first, last] of a job stored lane by lane. Returns true when the job's counters show every lane rated or
 * failed, so no lane can still be pending (the counters move in the transaction that changes a lane).
 */
async function ratePass(
  pool: Pool,
  jobId: string,
  rate: RateLane,
  batchSize: number,
  first: number,
  last: number,
  stats: RatingStats
): Promise<boolean> {
  const read = async (from: number): Promise<ReadBatch | null> => {
    if (from > last) return null;
    const to = Math.min(last, from + batchSize - 1);
    const t = performance.now();
    const result = await pool.query<ReadBatch['rows'][number]>({
      text: `SELECT seq, origin, destination, equipment, to_char(pickup_date, 'YYYY-MM-DD')
               FROM controlroom.bulk_lane_rows
              WHERE job_id = $1 AND seq BETWEEN $2 AND $3 AND status = 'pending'
              ORDER BY seq`,
      values: [jobId, from, to],
      rowMode: 'array',
    });
    stats.readMs += performance.now() - t;
    return { from, to, rows: result.rows };
  };
  return pipelined(first, stats, {
    read,
    next: (batch) => batch.to + 1,
    isEmpty: (batch) => batch.rows.length === 0,
    rate: (batch) => rateBatch(batch, rate),
    write: (batch) => writeCommitted(pool, stats, WRITE_BATCH, [jobId, batch.from, batch.to, ...batch.params]),
  });
}

/**
 * Runs one statement in its own transaction, timing the statement and its commit; returns the `done` it
 * returns. No row: the job was deleted while it ran (its lanes went with it); nothing is left to rate.
 */
async function writeCommitted(pool: Pool, stats: RatingStats, sql: string, params: unknown[]): Promise<boolean> {
  let t = performance.now();
  const counters = await withTransaction(pool, 'READ COMMITTED', async (client) => {
    const { rows } = await client.query<{ done: boolean }>(sql, params);
    const now = performance.now();
    stats.writeMs += now - t;
    t = now;
    return rows[0];
  });
  stats.commitMs += performance.now() - t;
  stats.batches++;
  return counters ? counters.done : true;
}

/** The steps of one pass, for `pipelined`. */
interface PassSteps<Read, Rated extends { lanes: number }> {
  /** Reads the batch starting at `from`; null past the end of the pass. */
  read(from: number): Promise<Read | null>;
  /** Where the batch after this one starts. */
  next(batch: Read): number;
  isEmpty(batch: Read): boolean;
  /** Rates a batch (synchronous, on the event loop). */
  rate(batch: Read): Rated;
  /** Writes and commits a rated batch; true once the job's counters show every lane done. */
  write(batch: Rated): Promise<boolean>;
}

/**
 * Reads, rates and writes a pass's batches pipelined: while batch n is written and committed on one
 * connection (up to WRITES_IN_FLIGHT at once), batch n+1 is read on another and rated on the event loop.
 * Returns true when a write reported the job complete.
 */
async function pipelined<Read, Rated extends { lanes: number }>(
  first: number,
  stats: RatingStats,
  steps: PassSteps<Read, Rated>
): Promise<boolean> {
  let complete = false;
  let pendingRead: Promise<Read | null> = settleLater(steps.read(first));
  // Writes in flight, oldest first. Batches cover disjoint lanes, so they may commit in any order.
  const writes: Array<Promise<boolean>> = [];
  const awaitOldestWrite = async () => {
    const t = performance.now();
    if (await writes.shift()!) complete = true;
    stats.waitWriteMs += performance.now() - t;
  };
  try {
    for (;;) {
      const t = performance.now();
      const batch = await pendingRead;
      stats.waitReadMs += performance.now() - t;
      if (!batch) break;
      pendingRead = settleLater(steps.read(steps.next(batch)));
      if (steps.isEmpty(batch)) continue;

      const r = performance.now();
      const rated = steps.rate(batch);
      stats.rateMs += performance.now() - r;
      stats.lanes += rated.lanes;

      if (writes.length >= WRITES_IN_FLIGHT) await awaitOldestWrite();
      writes.push(settleLater(steps.write(rated)));
    }
    while (writes.length > 0) await awaitOldestWrite();
    return complete;
  } finally {
    // On a failure nothing is left running behind the queue's retry: a write in flight either commits
    // (its lanes are then no longer pending) or rolls back (they are rated again), never half.
    await Promise.allSettled([pendingRead, ...writes]);
  }
}

/** Chunks read from a job, in chunk order: [chunk, lanes_text] (see migration 1700000000033). */
interface ReadChunks {
  to: number;
  chunks: Array<[chunk: number, lanesText: string]>;
}

/** A COPY-text field as it was validated (only a field with a backslash has anything to undo). */
const unescapeField = (field: string) =>
  field.includes('\\')
    ? field.replace(/\\(.)/gs, (_, c: string) => (c === 't' ? '\t' : c === 'n' ? '\n' : c === 'r' ? '\r' : c))
    : field;

/** The lanes of a chunk's lanes_text: one line per lane, `line, origin, destination, equipment, date` by tabs. */
function lanesOf(lanesText: string): Lane[] {
  const lines = lanesText.split('\n');
  const lanes = new Array<Lane>(lines.length);
  for (let i = 0; i < lines.length; i++) {
    const f = lines[i]!.split('\t');
    lanes[i] = {
      origin: unescapeField(f[1]!),
      destination: unescapeField(f[2]!),
      equipment: f[3] as Equipment,
      pickupDate: f[4]!,
    };
  }
  return lanes;
}

/** Rated chunks, as the statement of writeChunksSql (built for their number of chunks) and its parameters. */
interface RatedChunks {
  lanes: number;
  sql: string;
  params: unknown[];
}

/**
 * One pass over chunks [first, last] of a chunked job: reads `chunksPerBatch` chunks that have no result
 * row yet, rates them with the batch rater, and writes each chunk's results as a new row (writeChunksSql).
 */
async function rateChunkPass(
  pool: Pool,
  jobId: string,
  rateLanes: RateLanes,
  chunksPerBatch: number,
  first: number,
  last: number,
  stats: RatingStats
): Promise<boolean> {
  const out = new RatedBatch(0);
  const read = async (from: number): Promise<ReadChunks | null> => {
    if (from > last) return null;
    const to = Math.min(last, from + chunksPerBatch - 1);
    const t = performance.now();
    const result = await pool.query<ReadChunks['chunks'][number]>({
      text: `SELECT c.chunk, c.lanes_text
               FROM controlroom.bulk_lane_chunks c
              WHERE c.job_id = $1 AND c.chunk BETWEEN $2 AND $3
                AND NOT EXISTS (SELECT 1 FROM controlroom.bulk_lane_results r WHERE r.job_id = c.job_id AND r.chunk = c.chunk)
              ORDER BY c.chunk`,
      values: [jobId, from, to],
      rowMode: 'array',
    });
    stats.readMs += performance.now() - t;
    return { to, chunks: result.rows };
  };
  return pipelined(first, stats, {
    read,
    next: (batch) => batch.to + 1,
    isEmpty: (batch) => batch.chunks.length === 0,
    rate: (batch) => rateChunks(jobId, batch, rateLanes, out),
    write: (batch) => writeCommitted(pool, stats, batch.sql, batch.params),
  });
}

const ANOMALY = FLAG_BITS.anomaly;
const NEEDS_REVIEW = FLAG_BITS.needsReview;

/** Tallies of one chunk and arm for bulk_rating_tallies (the pricing drift totals). */
class Tallies {
  chunk: number[] = [];
  model: string[] = [];
  arm: string[] = [];
  lanes: number[] = [];
  anomalies: number[] = [];
  review: number[] = [];
  cents: number[] = [];
  miles: number[] = [];
  add(
    chunk: number,
    model: string,
    arm: string,
    lanes: number,
    anomalies: number,
    review: number,
    cents: number,
    miles: number
  ) {
    if (lanes === 0) return;
    this.chunk.push(chunk);
    this.model.push(model);
    this.arm.push(arm);
    this.lanes.push(lanes);
    this.anomalies.push(anomalies);
    this.review.push(review);
    this.cents.push(cents);
    this.miles.push(miles);
  }
}

/**
 * Rates the chunks of a batch into the write's parameters: each chunk's results as one text of numbers
 * (see migration 1700000000033), and its error messages, free text the driver escapes, only for a chunk
 * with a failed lane.
 */
function rateChunks(jobId: string, batch: ReadChunks, rateLanes: RateLanes, out: RatedBatch): RatedChunks {
  const tallies = new Tallies();
  const params: unknown[] = [jobId];
  const values: string[] = [];
  let lanes = 0;
  for (const [chunk, lanesText] of batch.chunks) {
    const input = lanesOf(lanesText);
    const n = input.length;
    const r = rateLanes(input, out);
    const results = new Array<string>(n);
    const errors: Array<string | null> | null = r.failedCount > 0 ? new Array<string | null>(n) : null;
    // [lanes, anomalies, needs_review, cents, miles] per arm: active, candidate.
    const sums = [
      [0, 0, 0, 0, 0],
      [0, 0, 0, 0, 0],
    ] as [number[], number[]];
    for (let i = 0; i < n; i++) {
      if (r.failed[i] === 1) {
        results[i] = 'x';
        errors![i] = r.errorAt(i)!.slice(0, 300);
        continue;
      }
      const candidate = r.arm[i] === 1;
      const bits = r.flags[i]!;
      const m = r.miles[i]!;
      const cents = r.totalCents[i]!;
      const perMile = m > 0 ? Math.round(cents / m) : 0;
      results[i] =
        `${candidate ? 'c' : 'a'}\t${bits}\t${m}\t${r.linehaulCents[i]}\t${r.fuelCents[i]}\t${cents}\t${perMile}`;
      if (errors) errors[i] = null;
      const sum = sums[candidate ? 1 : 0];
      sum[0]!++;
      if (bits & ANOMALY) sum[1]!++;
      if (bits & NEEDS_REVIEW) sum[2]!++;
      sum[3]! += cents;
      sum[4]! += m;
    }
    const activeModel = r.active!.version;
    const candidateModel = r.candidate?.version ?? null;
    for (const [index, sum] of sums.entries()) {
      const model = index === 1 ? candidateModel : activeModel;
      if (model !== null)
        tallies.add(
          chunk,
          model,
          index === 1 ? 'candidate' : 'active',
          ...(sum as [number, number, number, number, number])
        );
    }
    const p = params.length;
    values.push(
      `($1, $${p + 1}::int, $${p + 2}, $${p + 3}, $${p + 4}::int, $${p + 5}::int, $${p + 6}, $${p + 7}::text[])`
    );
    params.push(chunk, activeModel, candidateModel, n - r.failedCount, r.failedCount, results.join('\n'), errors);
    lanes += n;
  }
  const t = params.length;
  params.push(
    tallies.chunk,
    tallies.model,
    tallies.arm,
    tallies.lanes,
    tallies.anomalies,
    tallies.review,
    tallies.cents,
    tallies.miles
  );
  return { lanes, sql: writeChunksSql(values, t), params };
}

/**
 * Writes rated chunks as new bulk_lane_results rows, their pricing tallies, and the job's counters moved by
 * exactly the chunks it wrote, in one statement. A chunk that already has results (a second worker on the
 * same job, or a batch that committed before a kill -9 and is read again) conflicts on the primary key and
 * counts nothing: no lane is rated twice. Each tally takes its id from the rated-id sequence here, so the
 * exporter's id cursor follows chunk ratings as it follows per-lane ones. `done` is true once every lane
 * of the job is rated or failed.
 */
function writeChunksSql(values: string[], t: number): string {
  return `
  WITH inserted AS (
    INSERT INTO controlroom.bulk_lane_results
      (job_id, chunk, active_model, candidate_model, lanes_rated, lanes_failed, results_text, errors)
    VALUES ${values.join(',\n           ')}
    ON CONFLICT (job_id, chunk) DO NOTHING
    RETURNING chunk, lanes_rated, lanes_failed
  ), tallied AS (
    INSERT INTO controlroom.bulk_rating_tallies
      (id, job_id, chunk, model_version, arm, lanes, anomaly_lanes, needs_review_lanes, cents, miles)
    SELECT nextval('controlroom.bulk_lanes_rated_id_seq'), $1, t.chunk, t.model, t.arm, t.lanes, t.anomalies, t.review,
           t.cents, t.miles
      FROM unnest($${t + 1}::int[], $${t + 2}::text[], $${t + 3}::text[], $${t + 4}::int[], $${t + 5}::int[],
                  $${t + 6}::int[], $${t + 7}::bigint[], $${t + 8}::float8[])
           AS t(chunk, model, arm, lanes, anomalies, review, cents, miles)
     WHERE t.chunk IN (SELECT chunk FROM inserted)
  )
  UPDATE controlroom.bulk_jobs
     SET lanes_rated = lanes_rated + (SELECT coalesce(sum(lanes_rated), 0) FROM inserted),
         lanes_failed = lanes_failed + (SELECT coalesce(sum(lanes_failed), 0) FROM inserted)
   WHERE id = $1
  RETURNING lanes_rated + lanes_failed >= lanes_total AS done`;
}

/** Marks a promise's rejection as handled now; awaiting it later still throws. */
function settleLater<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/**
 * Writes a batch's results to the lanes still pending and moves the job's counters by the lanes it
 * actually changed, in one statement. `done` is true once every lane of the job is rated or failed.
 * The seq range keeps the plan to the batch's own lanes (an index range on the primary key). A lane
 * becoming rated takes its rated_id here, from the sequence, so the stamping trigger has nothing to do
 * (migration 1700000000028); the exporter counts it by that id exactly as before.
 */
const WRITE_BATCH = `
  WITH r AS (
    SELECT * FROM unnest($4::int[], $5::text[], $6::float8[], $7::numeric[], $8::numeric[], $9::numeric[],
                         $10::numeric[], $11::text[], $12::text[], $13::text[], $14::text[])
             AS r(seq, status, miles, linehaul, fuel, total, per_mile, model, arm, flags, error)
  ), changed AS (
    UPDATE controlroom.bulk_lane_rows l
       SET status = r.status, miles = r.miles, linehaul = r.linehaul, fuel = r.fuel, total = r.total,
           per_mile = r.per_mile, model_version = r.model, arm = r.arm, flags = r.flags::text[], error = r.error,
           rated_id = CASE WHEN r.status = 'rated' THEN nextval('controlroom.bulk_lanes_rated_id_seq') END
      FROM r
     WHERE l.job_id = $1 AND l.seq BETWEEN $2 AND $3 AND l.seq = r.seq AND l.status = 'pending'
    RETURNING l.status
  )
  UPDATE controlroom.bulk_jobs
     SET lanes_rated = lanes_rated + (SELECT count(*) FROM changed WHERE status = 'rated'),
         lanes_failed = lanes_failed + (SELECT count(*) FROM changed WHERE status = 'failed')
   WHERE id = $1
  RETURNING lanes_rated + lanes_failed >= lanes_total AS done`;

/** Rates a batch into the WRITE_BATCH parameters. A lane the engine cannot rate is written as failed. */
function rateBatch(batch: ReadBatch, rate: RateLane): RatedRows {
  const n = batch.rows.length;
  const seq = new Array<number>(n);
  const status = new Array<string>(n);
  const miles = new Array<number | string>(n);
  const linehaul = new Array<number | string>(n);
  const fuel = new Array<number | string>(n);
  const total = new Array<number | string>(n);
  const perMile = new Array<number | string>(n);
  const model = new Array<string | null>(n);
  const arm = new Array<string>(n);
  const flags = new Array<string>(n);
  const error = new Array<string | null>(n);
  for (let i = 0; i < n; i++) {
    const [laneSeq, origin, destination, equipment, pickupDate] = batch.rows[i]!;
    seq[i] = laneSeq;
    try {
      const r = rate({ origin, destination, equipment, pickupDate });
      status[i] = 'rated';
      miles[i] = r.miles;
      linehaul[i] = r.linehaul;
      fuel[i] = r.fuel;
      total[i] = r.total;
      perMile[i] = r.perMile;
      model[i] = r.modelVersion;
      arm[i] = r.arm;
      flags[i] = flagsLiteral(r.flags);
      error[i] = null;
    } catch (e) {
      status[i] = 'failed';
      miles[i] = linehaul[i] = fuel[i] = total[i] = perMile[i] = 'NULL';
      model[i] = null;
      arm[i] = 'NULL';
      flags[i] = '{}';
      error[i] = (e as Error).message.slice(0, 300);
    }
  }
  // Numbers, statuses and arms need no quoting: their array literals are joined directly, which is far
  // cheaper than the driver's per-element escaping. Model versions and errors are free text: the driver
  // escapes those.
  return {
    from: batch.from,
    to: batch.to,
    lanes: n,
    params: [
      `{${seq.join(',')}}`,
      `{${status.join(',')}}`,
      `{${miles.join(',')}}`,
      `{${linehaul.join(',')}}`,
      `{${fuel.join(',')}}`,
      `{${total.join(',')}}`,
      `{${perMile.join(',')}}`,
      model,
      `{${arm.join(',')}}`,
      flags,
      error,
    ],
  };
}

/** A flags array as a text[] literal; the engine's flags are a handful of fixed words, memoised. */
const flagLiterals = new Map<string, string>();
function flagsLiteral(list: readonly string[]): string {
  if (list.length === 0) return '{}';
  const key = list.join(',');
  let literal = flagLiterals.get(key);
  if (literal === undefined) {
    literal = `{${list.map((f) => `"${f.replace(/["\\]/g, '')}"`).join(',')}}`;
    if (flagLiterals.size < 1024) flagLiterals.set(key, literal);
  }
  return literal;
}

async function finish(
  pool: Pool,
  jobId: string,
  agentTaskId: string,
  companyId: string,
  error: string | null
): Promise<void> {
  await withTransaction(pool, 'READ COMMITTED', async (client) => {
    const { rows } = await client.query<{
      lanes_total: number;
      lanes_rated: number;
      lanes_failed: number;
      rejected_rows: number;
    }>(
      `UPDATE controlroom.bulk_jobs SET status = $2, finished_at = now(), error = $3
        WHERE id = $1 AND status = 'running' RETURNING lanes_total, lanes_rated, lanes_failed, rejected_rows`,
      [jobId, error ? 'failed' : 'succeeded', error]
    );
    const counts = rows[0];
    if (!counts) return;
    const outcome = { job_id: jobId, outcome: error ? 'failed' : 'succeeded', ...counts, error };
    await client.query(`UPDATE agent_tasks SET status = $2, payload = payload || $3::jsonb WHERE id = $1`, [
      agentTaskId,
      error ? 'failed' : 'success',
      JSON.stringify(outcome),
    ]);
    await audit(client, {
      actor: ACTOR,
      action: error ? 'bulk_rating.job_failed' : 'bulk_rating.job_completed',
      target: `bulk_jobs/${jobId}`,
      companyId,
      payload: outcome,
    });
  });
}
