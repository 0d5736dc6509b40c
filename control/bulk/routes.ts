import {
  SubmitBulkJobBody,
  type BulkAllowance,
  type BulkJobListResponse,
  type BulkJobResponse,
  type BulkResultsResponse,
  type CompaniesResponse,
  type Company,
  type RatedLane,
  type SubmitBulkJobResponse,
} from '@controlroom/contract';
import { stringify } from 'csv-stringify';
import express, { type Request, type Router } from 'express';
import { actorOf, requireAction } from '../../core/access.ts';
import type { BulkConfig as BulkConfigKeys } from './config.ts';
import type { Pool } from '../../core/db.ts';
import { decodeUtf8, mediaTypeOf, parseInput, readBody, requireUtf8Charset, safeText } from '../../core/http.ts';
import { UserError } from '../../core/errors.ts';
import { bulkAllowance } from './allowance.ts';
import {
  ingestCsv,
  ingestJson,
  type IngestLimits,
  type IngestResult,
  type LaneWriter,
  type StreamingIngest,
} from './ingest.ts';
import { jobView, submitJob, type JobRow } from './jobs.ts';
import type { RatingService } from './rater.ts';

export type BulkConfig = Pick<
  BulkConfigKeys,
  'BULK_MAX_UPLOAD_BYTES' | 'BULK_MAX_LANES' | 'BULK_MAX_ERRORS_REPORTED' | 'BULK_UPLOAD_CONCURRENCY'
> &
  Partial<Pick<BulkConfigKeys, 'BULK_RATE_BATCH'>>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const todayUtc = () => new Date().toISOString().slice(0, 10);
const RESULT_PAGE = 5_000;
const RESULT_COLUMNS = [
  'line',
  'origin',
  'destination',
  'equipment',
  'pickup_date',
  'status',
  'miles',
  'linehaul',
  'fuel',
  'total',
  'per_mile',
  'model_version',
  'flags',
  'error',
] as const;

const JSON_COLUMNS = RESULT_COLUMNS.map((c) =>
  c === 'pickup_date' ? `to_char(pickup_date, 'YYYY-MM-DD') AS pickup_date` : c
).join(', ');
const CSV_COLUMNS = `seq, ${RESULT_COLUMNS.map((c) =>
  c === 'pickup_date'
    ? `to_char(pickup_date, 'YYYY-MM-DD') AS pickup_date`
    : c === 'flags'
      ? `array_to_string(flags, ' ') AS flags`
      : c
).join(', ')}`;

/**
 * Up to `limit` lanes of a job after seq `after`, in seq order, wherever they are stored: per-lane rows
 * (jobs from before migration 1700000000033) or chunks. A job's seqs run 1..lanes_total without gaps, so
 * only the chunks that overlap (after, after + limit] are read and unnested: a page costs the same at the
 * start and the end of a 1M-lane job.
 */
export async function lanesAfter<R extends object>(
  pool: Pool,
  jobId: string,
  after: number,
  limit: number,
  columns: string
): Promise<R[]> {
  const lane = `seq, line, origin, destination, equipment, pickup_date, status, miles, linehaul, fuel, total, per_mile,
                model_version, flags, error`;
  const { rows } = await pool.query<R>(
    `SELECT ${columns} FROM (
       (SELECT ${lane} FROM controlroom.bulk_lane_rows WHERE job_id = $1 AND seq > $2::bigint ORDER BY seq LIMIT $3)
       UNION ALL
       (SELECT ${lane} FROM controlroom.bulk_chunk_lanes
         WHERE job_id = $1 AND chunk_first_seq + chunk_lanes - 1 > $2::bigint AND chunk_first_seq <= $2::bigint + $3
           AND seq > $2::bigint
         ORDER BY seq LIMIT $3)
     ) lanes ORDER BY seq LIMIT $3`,
    [jobId, after, limit]
  );
  return rows;
}

/** Text a caller sent, cut short and with control characters dropped, for use in a message. */
const quoted = (value: string) => safeText(value.slice(0, 80));

/** The company query parameter: `companyId`, or the old name `company_id` that scripts send; messages use the name sent. */
function companyParam(query: Request['query']): string {
  const [name, value] =
    query.companyId !== undefined ? ['companyId', query.companyId] : ['company_id', query.company_id];
  if (value === undefined || value === '') throw new UserError(400, 'companyId is required');
  if (typeof value !== 'string') throw new UserError(400, `${name} must be given once`);
  if (!UUID.test(value)) throw new UserError(400, `${name} '${quoted(value)}' is not a UUID`);
  return value;
}

/** An optional whole-number query parameter within [min, max]; 400 naming it otherwise. */
function intParam(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined || value === '') return fallback;
  const n = typeof value === 'string' && /^\d{1,15}$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new UserError(400, `${name} must be a whole number from ${min} to ${max}`);
  return n;
}

function idempotencyKey(req: Request): string | null {
  const key = req.header('idempotency-key');
  if (key === undefined) return null;
  if (!/^[\x21-\x7e]{1,200}$/.test(key))
    throw new UserError(400, 'Idempotency-Key must be 1-200 printable ASCII characters');
  return key;
}

async function loadJob(pool: Pool, id: string): Promise<JobRow> {
  if (!UUID.test(id)) throw new UserError(400, `job id '${quoted(id)}' is not a UUID`);
  const { rows } = await pool.query<JobRow>(`SELECT * FROM controlroom.bulk_jobs WHERE id = $1`, [id]);
  if (!rows[0]) throw new UserError(404, `no bulk rating job ${id}`);
  return rows[0];
}

/** /api/bulk-rating: Editors submit jobs (CSV or JSON lanes), Viewers follow them and download results. */
/**
 * `pool` serves reads; `uploadPool` (BULK_UPLOAD_CONCURRENCY connections) serves submissions, each of
 * which holds its connection while its body streams in. A submission while every upload slot is taken
 * is refused with 429 and Retry-After before its body is read, so a few slow clients cannot take the
 * connections the rest of the service needs, and a refused client has written nothing.
 */
export function bulkRatingRouter(
  { pool, uploadPool }: { pool: Pool; uploadPool: Pool },
  rating: RatingService,
  config: BulkConfig
): Router {
  const router = express.Router();
  let uploadsInProgress = 0;
  const viewer = requireAction('read');
  const editor = requireAction('bulkWrite');
  const limits: IngestLimits = {
    maxBytes: config.BULK_MAX_UPLOAD_BYTES,
    maxLanes: config.BULK_MAX_LANES,
    maxErrorsReported: config.BULK_MAX_ERRORS_REPORTED,
  };

  router.post('/bulk-rating/jobs', editor, async (req, res) => {
    const type = mediaTypeOf(req);
    if (type !== 'text/csv' && type !== 'application/csv' && type !== 'application/json') {
      throw new UserError(
        415,
        `send text/csv (with ?companyId=) or application/json ({companyId, lanes}), not '${quoted(type) || 'no content type'}'`
      );
    }
    requireUtf8Charset(req);
    const key = idempotencyKey(req);
    const declared = Number(req.header('content-length') ?? '0');
    if (declared > limits.maxBytes) throw new UserError(413, `upload larger than ${limits.maxBytes} bytes`);
    if (uploadsInProgress >= config.BULK_UPLOAD_CONCURRENCY) {
      res.setHeader('retry-after', '5');
      throw new UserError(
        429,
        `${uploadsInProgress} bulk uploads are already in progress (BULK_UPLOAD_CONCURRENCY); retry in a few seconds`
      );
    }
    uploadsInProgress++;
    try {
      await submitAndAnswer(req, res, type, key);
    } finally {
      uploadsInProgress--;
    }
  });

  async function submitAndAnswer(req: express.Request, res: express.Response, type: string, key: string | null) {
    let companyId: string;
    let ingest: IngestResult | StreamingIngest;
    let source: 'csv' | 'json';
    let filename: string | null = null;
    if (type === 'application/json') {
      const raw = decodeUtf8(await readBody(req, limits.maxBytes).catch(renameTooLarge(limits.maxBytes)), 'the body');
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch (error) {
        throw new UserError(400, `body is not valid JSON: ${(error as Error).message}`);
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        throw new UserError(400, 'the body must be a JSON object {companyId, lanes}');
      const submitted = parseInput(SubmitBulkJobBody, body);
      companyId = submitted.companyId;
      source = 'json';
      ingest = ingestJson(submitted.lanes, raw, limits, rating.checkLocation, todayUtc());
    } else {
      companyId = companyParam(req.query);
      if (req.query.filename !== undefined && typeof req.query.filename !== 'string')
        throw new UserError(400, 'filename must be given once');
      filename = typeof req.query.filename === 'string' ? safeText(req.query.filename.slice(0, 200)) || null : null;
      source = 'csv';
      const today = todayUtc();
      ingest = (lanes: LaneWriter) => ingestCsv(req, limits, rating.checkLocation, today, lanes);
    }
    const { job, replayed, allowance } = await submitJob(uploadPool, {
      companyId,
      actor: actorOf(req.caller!),
      idempotencyKey: key,
      source,
      filename,
      ingest,
      chunkLanes: config.BULK_RATE_BATCH,
      ipAddress: req.ip ?? null,
      userAgent: req.header('user-agent') ?? null,
    });
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(replayed ? 200 : 202).json({
      job: jobView(job),
      lanesAccepted: job.lanes_total,
      rejectedRows: job.rejected_rows,
      errors: job.rejected,
      errorsTruncated: job.rejected_rows > job.rejected.length,
      allowance,
    } satisfies SubmitBulkJobResponse);
  }

  router.get('/bulk-rating/jobs', viewer, async (req, res) => {
    const companyId =
      req.query.companyId === undefined && req.query.company_id === undefined ? null : companyParam(req.query);
    const limit = intParam(req.query.limit, 'limit', 50, 1, 200);
    const { rows } = await pool.query<JobRow>(
      `SELECT * FROM controlroom.bulk_jobs WHERE ($1::uuid IS NULL OR company_id = $1) ORDER BY created_at DESC LIMIT $2`,
      [companyId, limit]
    );
    res.json({ jobs: rows.map(jobView) } satisfies BulkJobListResponse);
  });

  router.get('/bulk-rating/jobs/:id', viewer, async (req, res) => {
    res.json({ job: jobView(await loadJob(pool, String(req.params.id))) } satisfies BulkJobResponse);
  });

  router.get('/bulk-rating/jobs/:id/results', viewer, async (req, res) => {
    const job = await loadJob(pool, String(req.params.id));
    const format =
      req.query.format === 'csv'
        ? 'csv'
        : req.query.format === undefined || req.query.format === 'json'
          ? 'json'
          : null;
    if (!format) throw new UserError(400, `format must be json or csv, not '${quoted(String(req.query.format))}'`);
    if (format === 'json') {
      const offset = intParam(req.query.offset, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
      const limit = intParam(req.query.limit, 'limit', 1000, 1, RESULT_PAGE);
      const rows = await lanesAfter<LaneRow>(pool, job.id, offset, limit, JSON_COLUMNS);
      res.json({ job: jobView(job), offset, lanes: rows.map(laneView) } satisfies BulkResultsResponse);
      return;
    }
    res.setHeader('content-type', 'text/csv; charset=utf-8');
    res.setHeader('content-disposition', `attachment; filename="bulk-rating-${job.id}.csv"`);
    const csv = stringify({ header: true, columns: [...RESULT_COLUMNS] });
    csv.pipe(res);
    // Keyset pages, so a 100k-lane job streams in constant memory.
    for (let after = 0; ;) {
      const rows = await lanesAfter<Record<string, unknown> & { seq: number }>(
        pool,
        job.id,
        after,
        RESULT_PAGE,
        CSV_COLUMNS
      );
      for (const row of rows) if (!csv.write(row)) await new Promise((r) => csv.once('drain', r));
      if (rows.length < RESULT_PAGE) break;
      after = rows[rows.length - 1]!.seq;
    }
    csv.end();
  });

  router.get('/bulk-rating/allowance', viewer, async (req, res) => {
    res.json((await bulkAllowance(pool, companyParam(req.query))) satisfies BulkAllowance);
  });

  router.get('/companies', viewer, async (req, res) => {
    const search = typeof req.query.search === 'string' ? safeText(req.query.search.slice(0, 100)) : '';
    const { rows } = await pool.query<Company>(
      `SELECT c.id, c.name, e.plan_id AS plan FROM companies c LEFT JOIN org_entitlements e ON e.company_id = c.id
        WHERE c.deleted_at IS NULL AND ($1 = '' OR c.name ILIKE '%' || $1 || '%') ORDER BY c.name LIMIT 50`,
      [search]
    );
    res.json({ companies: rows } satisfies CompaniesResponse);
  });
  return router;
}

/** A bulk_lanes row as pg returns it (numeric columns as text). */
interface LaneRow {
  line: number;
  origin: string;
  destination: string;
  equipment: string;
  pickup_date: string;
  status: string;
  miles: number | null;
  linehaul: string | null;
  fuel: string | null;
  total: string | null;
  per_mile: string | null;
  model_version: string | null;
  flags: string[] | null;
  error: string | null;
}
const money = (v: string | null) => (v === null ? null : Number(v));
const laneView = (r: LaneRow): RatedLane => ({
  line: r.line,
  origin: r.origin,
  destination: r.destination,
  equipment: r.equipment,
  pickupDate: r.pickup_date,
  status: r.status,
  miles: r.miles,
  linehaul: money(r.linehaul),
  fuel: money(r.fuel),
  total: money(r.total),
  perMile: money(r.per_mile),
  modelVersion: r.model_version,
  flags: r.flags,
  error: r.error,
});

/** The shared reader says "body"; an upload is refused as an upload. */
const renameTooLarge =
  (maxBytes: number) =>
  (error: unknown): never => {
    if (error instanceof UserError && error.status === 413)
      throw new UserError(413, `upload larger than ${maxBytes} bytes`);
    throw error;
  };
