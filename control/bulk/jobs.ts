import { randomUUID } from 'node:crypto';
import type { BulkAllowance, BulkJob } from '@controlroom/contract';
import { audit } from '../../core/audit.ts';
import type { Pool, PoolClient } from '../../core/db.ts';
import { withTransaction } from '../../core/db.ts';
import { UserError } from '../../core/errors.ts';
import { enqueueJob } from '../../core/jobs.ts';
import { bulkAllowance, checkAllowance } from './allowance.ts';
import { LaneCopy, LaneCounter, type IngestResult, type IngestSummary, type StreamingIngest } from './ingest.ts';

export const BULK_RATE_TASK = 'bulk_rate';

declare global {
  namespace GraphileWorker {
    interface Tasks {
      /** Rate the pending lanes of one bulk job (controlroom.bulk_jobs.id); handled by process.ts. */
      bulk_rate: { jobId: string };
    }
  }
}

export interface JobSubmission {
  companyId: string;
  actor: string;
  idempotencyKey: string | null;
  source: 'csv' | 'json';
  filename: string | null;
  /**
   * JSON lanes validated already, or a CSV upload still to be read: it is read inside the transaction,
   * its good lanes COPYed into bulk_lane_chunks as they are validated (see ingest.ts).
   */
  ingest: IngestResult | StreamingIngest;
  /**
   * Lanes per stored chunk: the service passes BULK_RATE_BATCH, since a chunk is what the worker rates
   * and commits at once (DEFAULT_CHUNK_LANES when absent).
   */
  chunkLanes?: number;
  ipAddress: string | null;
  userAgent: string | null;
}

export interface JobRow {
  id: string;
  company_id: string;
  submitted_by: string;
  status: string;
  source: string;
  filename: string | null;
  lanes_total: number;
  lanes_rated: number;
  lanes_failed: number;
  rejected_rows: number;
  rejected: Array<{ line: number; reason: string }>;
  agent_task_id: string;
  error: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  request_sha256: string;
}

export const jobView = (job: JobRow): BulkJob => ({
  id: job.id,
  companyId: job.company_id,
  submittedBy: job.submitted_by,
  status: job.status as BulkJob['status'],
  source: job.source as BulkJob['source'],
  filename: job.filename,
  lanesTotal: job.lanes_total,
  lanesRated: job.lanes_rated,
  lanesFailed: job.lanes_failed,
  progress: job.lanes_total ? (job.lanes_rated + job.lanes_failed) / job.lanes_total : 0,
  rejectedRows: job.rejected_rows,
  errors: job.rejected,
  agentTaskId: Number(job.agent_task_id),
  error: job.error,
  createdAt: job.created_at.toISOString(),
  startedAt: job.started_at?.toISOString() ?? null,
  finishedAt: job.finished_at?.toISOString() ?? null,
});

/** A repeated Idempotency-Key: the transaction that read the upload again rolls back, and the first job is returned. */
class Replay {
  constructor(readonly job: JobRow) {}
}

/**
 * Creates a job in one transaction: the lanes, the job's usage event (one unit of the bulk jobs per day
 * meter, its lane count in the metadata), the agent task that reports the outcome, the audit entry and
 * the queue job. Per company the check against the plan limit
 * and the insert are serialised, so two uploads cannot both squeeze under the limit. A repeated
 * Idempotency-Key returns the job it created the first time.
 *
 * A CSV upload is read inside the transaction: the job's row is inserted first (bulk_lane_chunks checks that
 * its lanes' job exists), with placeholder counts and no idempotency key, and the lanes are COPYed as
 * they are validated; once the upload is read whole the row gets its real values. A refusal at any point
 * (a bad file, the plan, a replay) rolls all of it back: nothing is visible before the commit, and a
 * crash before it leaves nothing (kill -9 safe). The key is set only under the company's lock, so two
 * concurrent uploads with one key serialise there and the second becomes a replay.
 */
export async function submitJob(
  pool: Pool,
  submission: JobSubmission
): Promise<{ job: JobRow; replayed: boolean; allowance: BulkAllowance }> {
  try {
    return await withTransaction(pool, 'READ COMMITTED', (client) => createJob(client, submission));
  } catch (error) {
    if (!(error instanceof Replay)) throw error;
    return { job: error.job, replayed: true, allowance: await bulkAllowance(pool, submission.companyId) };
  }
}

async function createJob(
  client: PoolClient,
  submission: JobSubmission
): Promise<{ job: JobRow; replayed: boolean; allowance: BulkAllowance }> {
  const jobId = randomUUID();
  let summary: IngestSummary;
  if (typeof submission.ingest === 'function') {
    // A company that does not exist gets its 404 from bulkAllowance below, after the file's own errors
    // (as for JSON); its lanes are only counted.
    const known = await client.query(`SELECT 1 FROM companies WHERE id = $1`, [submission.companyId]);
    let lanes: LaneCopy | LaneCounter = new LaneCounter();
    if (known.rowCount) {
      await client.query(
        `INSERT INTO controlroom.bulk_jobs (id, company_id, submitted_by, request_sha256, source, filename, lanes_total, agent_task_id)
         VALUES ($1, $2, $3, '', $4, $5, 1, 0)`,
        [jobId, submission.companyId, submission.actor, submission.source, submission.filename]
      );
      lanes = await LaneCopy.open(client, jobId, submission.chunkLanes);
    }
    try {
      summary = await submission.ingest(lanes);
      if (lanes instanceof LaneCopy) await lanes.finish();
    } catch (error) {
      if (lanes instanceof LaneCopy) lanes.abort(error as Error);
      throw error;
    }
  } else {
    summary = { ...submission.ingest, lanes: submission.ingest.lanes.length };
  }

  await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('bulk_rating:' || $1, 0))`, [submission.companyId]);
  if (submission.idempotencyKey) {
    const existing = await client.query<JobRow>(
      `SELECT * FROM controlroom.bulk_jobs WHERE company_id = $1 AND idempotency_key = $2`,
      [submission.companyId, submission.idempotencyKey]
    );
    const job = existing.rows[0];
    if (job) {
      if (job.request_sha256 !== summary.sha256) {
        throw new UserError(
          422,
          `Idempotency-Key '${submission.idempotencyKey}' was already used for a different request (job ${job.id})`
        );
      }
      throw new Replay(job);
    }
  }
  const { errors, rejectedRows } = summary;
  const allowance = await bulkAllowance(client, submission.companyId);
  if (summary.lanes === 0) {
    throw new UserError(400, `no valid lanes: all ${rejectedRows} rows were rejected`, { errors });
  }
  // The plan meters jobs per period; the lanes of one job are bounded by BULK_MAX_LANES at ingest.
  checkAllowance(allowance, 1);

  const task = await client.query<{ id: string }>(
    `INSERT INTO agent_tasks (company_id, fn_name, payload, status) VALUES ($1, 'bulk_rating', $2, 'queued') RETURNING id`,
    [submission.companyId, JSON.stringify({ job_id: jobId, lanes: summary.lanes, submitted_by: submission.actor })]
  );
  const { rows } =
    typeof submission.ingest === 'function'
      ? await client.query<JobRow>(
          `UPDATE controlroom.bulk_jobs
              SET idempotency_key = $2, request_sha256 = $3, lanes_total = $4, rejected_rows = $5, rejected = $6,
                  agent_task_id = $7
            WHERE id = $1 RETURNING *`,
          [
            jobId,
            submission.idempotencyKey,
            summary.sha256,
            summary.lanes,
            rejectedRows,
            JSON.stringify(errors),
            task.rows[0]!.id,
          ]
        )
      : await client.query<JobRow>(
          `INSERT INTO controlroom.bulk_jobs
             (id, company_id, submitted_by, idempotency_key, request_sha256, source, filename, lanes_total, rejected_rows, rejected, agent_task_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *`,
          [
            jobId,
            submission.companyId,
            submission.actor,
            submission.idempotencyKey,
            summary.sha256,
            submission.source,
            submission.filename,
            summary.lanes,
            rejectedRows,
            JSON.stringify(errors),
            task.rows[0]!.id,
          ]
        );
  if (typeof submission.ingest !== 'function')
    await insertLanes(client, jobId, submission.ingest, submission.chunkLanes);
  await client.query(
    `INSERT INTO usage_events (company_id, feature_key, qty, metadata) VALUES ($1, 'bulk_rating', 1, $2)`,
    [submission.companyId, JSON.stringify({ bulk_job_id: jobId, lanes: summary.lanes })]
  );
  await audit(client, {
    actor: submission.actor,
    action: 'bulk_rating.job_submitted',
    target: `bulk_jobs/${jobId}`,
    companyId: submission.companyId,
    payload: {
      lanes: summary.lanes,
      rejected_rows: rejectedRows,
      source: submission.source,
      filename: submission.filename,
      idempotency_key: submission.idempotencyKey,
    },
    ipAddress: submission.ipAddress,
    userAgent: submission.userAgent,
  });
  await enqueueJob(client, BULK_RATE_TASK, { jobId }, { jobKey: `${BULK_RATE_TASK}:${jobId}` });
  return {
    job: rows[0]!,
    replayed: false,
    allowance: {
      ...allowance,
      used: allowance.used + 1,
      remaining: allowance.remaining === null ? null : allowance.remaining - 1,
    },
  };
}

/** JSON lanes, validated already: COPYed as the CSV path COPYs. */
async function insertLanes(
  client: PoolClient,
  jobId: string,
  ingest: IngestResult,
  chunkLanes: number | undefined
): Promise<void> {
  const copy = await LaneCopy.open(client, jobId, chunkLanes);
  for (const lane of ingest.lanes) copy.add(lane);
  await copy.finish();
}
