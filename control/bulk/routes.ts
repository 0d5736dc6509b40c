import { stringify } from 'csv-stringify';
import express, { type Request, type Router } from 'express';
import { actorOf, requireAction } from '../../core/access.ts';
import type { BulkConfig as BulkConfigKeys } from './config.ts';
import type { Pool } from '../../core/db.ts';
import { decodeUtf8, HttpError, mediaTypeOf, readBody, requireUtf8Charset, safeText } from '../../core/http.ts';
import { bulkAllowance } from './allowance.ts';
import { ingestCsv, ingestJson, type IngestLimits } from './ingest.ts';
import { jobView, submitJob, type JobRow } from './jobs.ts';
import type { RatingService } from './rater.ts';

export type BulkConfig = Pick<BulkConfigKeys, 'BULK_MAX_UPLOAD_BYTES' | 'BULK_MAX_LANES' | 'BULK_MAX_ERRORS_REPORTED'>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const todayUtc = () => new Date().toISOString().slice(0, 10);
const RESULT_PAGE = 5_000;
const RESULT_COLUMNS = ['line', 'origin', 'destination', 'equipment', 'pickup_date', 'status', 'miles', 'linehaul', 'fuel', 'total', 'per_mile', 'model_version', 'flags', 'error'] as const;

/** Text a caller sent, cut short and with control characters dropped, for use in a message. */
const quoted = (value: string) => safeText(value.slice(0, 80));

function companyParam(value: unknown): string {
  if (value === undefined || value === '') throw new HttpError(400, 'company_id is required');
  if (typeof value !== 'string') throw new HttpError(400, 'company_id must be given once');
  if (!UUID.test(value)) throw new HttpError(400, `company_id '${quoted(value)}' is not a UUID`);
  return value;
}

/** An optional whole-number query parameter within [min, max]; 400 naming it otherwise. */
function intParam(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined || value === '') return fallback;
  const n = typeof value === 'string' && /^\d{1,15}$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new HttpError(400, `${name} must be a whole number from ${min} to ${max}`);
  return n;
}

function idempotencyKey(req: Request): string | null {
  const key = req.header('idempotency-key');
  if (key === undefined) return null;
  if (!/^[\x21-\x7e]{1,200}$/.test(key)) throw new HttpError(400, 'Idempotency-Key must be 1-200 printable ASCII characters');
  return key;
}

async function loadJob(pool: Pool, id: string): Promise<JobRow> {
  if (!UUID.test(id)) throw new HttpError(400, `job id '${quoted(id)}' is not a UUID`);
  const { rows } = await pool.query<JobRow>(`SELECT * FROM controlroom.bulk_jobs WHERE id = $1`, [id]);
  if (!rows[0]) throw new HttpError(404, `no bulk rating job ${id}`);
  return rows[0];
}

/** /api/bulk-rating: Editors submit jobs (CSV or JSON lanes), Viewers follow them and download results. */
export function bulkRatingRouter(pool: Pool, rating: RatingService, config: BulkConfig): Router {
  const router = express.Router();
  const viewer = requireAction('read');
  const editor = requireAction('bulkWrite');
  const limits: IngestLimits = { maxBytes: config.BULK_MAX_UPLOAD_BYTES, maxLanes: config.BULK_MAX_LANES, maxErrorsReported: config.BULK_MAX_ERRORS_REPORTED };

  router.post('/bulk-rating/jobs', editor, async (req, res) => {
    const type = mediaTypeOf(req);
    if (type !== 'text/csv' && type !== 'application/csv' && type !== 'application/json') {
      throw new HttpError(415, `send text/csv (with ?company_id=) or application/json ({company_id, lanes}), not '${quoted(type) || 'no content type'}'`);
    }
    requireUtf8Charset(req);
    const key = idempotencyKey(req);
    const declared = Number(req.header('content-length') ?? '0');
    if (declared > limits.maxBytes) throw new HttpError(413, `upload larger than ${limits.maxBytes} bytes`);
    let companyId: string;
    let ingest;
    let source: 'csv' | 'json';
    let filename: string | null = null;
    if (type === 'application/json') {
      const raw = decodeUtf8(await readBody(req, limits.maxBytes).catch(renameTooLarge(limits.maxBytes)), 'the body');
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch (error) {
        throw new HttpError(400, `body is not valid JSON: ${(error as Error).message}`);
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'the body must be a JSON object {company_id, lanes}');
      const { company_id: company, lanes } = body as { company_id?: unknown; lanes?: unknown };
      if (company !== undefined && typeof company !== 'string') throw new HttpError(400, 'company_id must be a UUID string');
      companyId = companyParam(company);
      if (!Array.isArray(lanes) || lanes.length === 0) throw new HttpError(400, 'lanes must be a non-empty array of {origin, destination, equipment, pickup_date}');
      source = 'json';
      ingest = ingestJson(lanes, raw, limits, rating.checkLocation, todayUtc());
    } else {
      companyId = companyParam(req.query.company_id);
      if (req.query.filename !== undefined && typeof req.query.filename !== 'string') throw new HttpError(400, 'filename must be given once');
      filename = typeof req.query.filename === 'string' ? safeText(req.query.filename.slice(0, 200)) || null : null;
      source = 'csv';
      ingest = await ingestCsv(req, limits, rating.checkLocation, todayUtc());
    }
    const { job, replayed, allowance } = await submitJob(pool, {
      companyId,
      actor: actorOf(req.caller!),
      idempotencyKey: key,
      source,
      filename,
      ingest,
      ipAddress: req.ip ?? null,
      userAgent: req.header('user-agent') ?? null,
    });
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(replayed ? 200 : 202).json({
      job: jobView(job),
      lanes_accepted: job.lanes_total,
      rejected_rows: job.rejected_rows,
      errors: job.rejected,
      errors_truncated: job.rejected_rows > job.rejected.length,
      allowance,
    });
  });

  router.get('/bulk-rating/jobs', viewer, async (req, res) => {
    const companyId = req.query.company_id === undefined ? null : companyParam(req.query.company_id);
    const limit = intParam(req.query.limit, 'limit', 50, 1, 200);
    const { rows } = await pool.query<JobRow>(
      `SELECT * FROM controlroom.bulk_jobs WHERE ($1::uuid IS NULL OR company_id = $1) ORDER BY created_at DESC LIMIT $2`,
      [companyId, limit],
    );
    res.json({ jobs: rows.map(jobView) });
  });

  router.get('/bulk-rating/jobs/:id', viewer, async (req, res) => {
    res.json({ job: jobView(await loadJob(pool, String(req.params.id))) });
  });

  router.get('/bulk-rating/jobs/:id/results', viewer, async (req, res) => {
    const job = await loadJob(pool, String(req.params.id));
    const format = req.query.format === 'csv' ? 'csv' : req.query.format === undefined || req.query.format === 'json' ? 'json' : null;
    if (!format) throw new HttpError(400, `format must be json or csv, not '${quoted(String(req.query.format))}'`);
    if (format === 'json') {
      const offset = intParam(req.query.offset, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
      const limit = intParam(req.query.limit, 'limit', 1000, 1, RESULT_PAGE);
      const { rows } = await pool.query(
        `SELECT ${RESULT_COLUMNS.map((c) => (c === 'pickup_date' ? `to_char(pickup_date, 'YYYY-MM-DD') AS pickup_date` : c)).join(', ')}
           FROM controlroom.bulk_lanes WHERE job_id = $1 ORDER BY seq OFFSET $2 LIMIT $3`,
        [job.id, offset, limit],
      );
      res.json({ job: jobView(job), offset, lanes: rows.map(numbersOf) });
      return;
    }
    res.setHeader('content-type', 'text/csv; charset=utf-8');
    res.setHeader('content-disposition', `attachment; filename="bulk-rating-${job.id}.csv"`);
    const csv = stringify({ header: true, columns: [...RESULT_COLUMNS] });
    csv.pipe(res);
    // Keyset pages, so a 100k-lane job streams in constant memory.
    for (let after = 0; ; ) {
      const { rows } = await pool.query<Record<string, unknown> & { seq: number }>(
        `SELECT seq, ${RESULT_COLUMNS.map((c) => (c === 'pickup_date' ? `to_char(pickup_date, 'YYYY-MM-DD') AS pickup_date` : c === 'flags' ? `array_to_string(flags, ' ') AS flags` : c)).join(', ')}
           FROM controlroom.bulk_lanes WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
        [job.id, after, RESULT_PAGE],
      );
      for (const row of rows) if (!csv.write(row)) await new Promise((r) => csv.once('drain', r));
      if (rows.length < RESULT_PAGE) break;
      after = rows[rows.length - 1]!.seq;
    }
    csv.end();
  });

  router.get('/bulk-rating/allowance', viewer, async (req, res) => {
    res.json(await bulkAllowance(pool, companyParam(req.query.company_id)));
  });

  router.get('/companies', viewer, async (req, res) => {
    const search = typeof req.query.search === 'string' ? safeText(req.query.search.slice(0, 100)) : '';
    const { rows } = await pool.query(
      `SELECT c.id, c.name, e.plan_id AS plan FROM companies c LEFT JOIN org_entitlements e ON e.company_id = c.id
        WHERE c.deleted_at IS NULL AND ($1 = '' OR c.name ILIKE '%' || $1 || '%') ORDER BY c.name LIMIT 50`,
      [search],
    );
    res.json({ companies: rows });
  });
  return router;
}

const NUMERIC = new Set(['linehaul', 'fuel', 'total', 'per_mile']);
const numbersOf = (row: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(row).map(([k, v]) => [k, NUMERIC.has(k) && v !== null ? Number(v) : v]));

/** The shared reader says "body"; an upload is refused as an upload. */
const renameTooLarge = (maxBytes: number) => (error: unknown): never => {
  if (error instanceof HttpError && error.status === 413) throw new HttpError(413, `upload larger than ${maxBytes} bytes`);
  throw error;
};
