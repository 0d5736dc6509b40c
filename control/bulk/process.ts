import type { JobHelpers, Task } from 'graphile-worker';
import { audit } from '../../core/audit.ts';
import type { Pool } from '../../core/db.ts';
import { withTransaction } from '../../core/db.ts';
import type { Logger } from '../../core/logger.ts';
import type { BULK_RATE_TASK } from './jobs.ts';
import type { RatingService } from './rater.ts';

const ACTOR = 'controlroom:bulk-rating';

interface PendingLane {
  seq: number;
  origin: string;
  destination: string;
  equipment: 'van' | 'reefer' | 'flatbed';
  pickup_date: string;
}

/**
 * Rates a job's lanes in batches. Each batch is one transaction that takes pending lanes, writes their
 * results and moves the job's counters, so after a kill -9 the job (released by the queue on restart)
 * continues with exactly the lanes still pending: none lost, none rated twice.
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
      const rate = await rating.raterForJob(pool);
      for (;;) {
        const done = await withTransaction(pool, 'READ COMMITTED', async (client) => {
          const { rows } = await client.query<PendingLane>(
            `SELECT seq, origin, destination, equipment, to_char(pickup_date, 'YYYY-MM-DD') AS pickup_date
               FROM controlroom.bulk_lanes WHERE job_id = $1 AND status = 'pending'
              ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED`,
            [jobId, batchSize]
          );
          if (rows.length === 0) return true;
          const out = {
            seq: [] as number[],
            status: [] as string[],
            miles: [] as (number | null)[],
            linehaul: [] as (number | null)[],
            fuel: [] as (number | null)[],
            total: [] as (number | null)[],
            perMile: [] as (number | null)[],
            model: [] as (string | null)[],
            arm: [] as (string | null)[],
            flags: [] as string[],
            error: [] as (string | null)[],
          };
          let failed = 0;
          for (const lane of rows) {
            out.seq.push(lane.seq);
            try {
              const r = rate({
                origin: lane.origin,
                destination: lane.destination,
                equipment: lane.equipment,
                pickupDate: lane.pickup_date,
              });
              out.status.push('rated');
              out.miles.push(r.miles);
              out.linehaul.push(r.linehaul);
              out.fuel.push(r.fuel);
              out.total.push(r.total);
              out.perMile.push(r.perMile);
              out.model.push(r.modelVersion);
              out.arm.push(r.arm);
              out.flags.push(`{${r.flags.map((f) => `"${f.replace(/"/g, '')}"`).join(',')}}`);
              out.error.push(null);
            } catch (error) {
              failed++;
              out.status.push('failed');
              for (const column of [out.miles, out.linehaul, out.fuel, out.total, out.perMile]) column.push(null);
              out.model.push(null);
              out.arm.push(null);
              out.flags.push('{}');
              out.error.push((error as Error).message.slice(0, 300));
            }
          }
          await client.query(
            `UPDATE controlroom.bulk_lanes l
                SET status = r.status, miles = r.miles, linehaul = r.linehaul, fuel = r.fuel, total = r.total,
                    per_mile = r.per_mile, model_version = r.model, arm = r.arm, flags = r.flags::text[], error = r.error
               FROM unnest($2::int[], $3::text[], $4::float8[], $5::numeric[], $6::numeric[], $7::numeric[], $8::numeric[], $9::text[], $10::text[], $11::text[], $12::text[])
                    AS r(seq, status, miles, linehaul, fuel, total, per_mile, model, flags, error, arm)
              WHERE l.job_id = $1 AND l.seq = r.seq`,
            [
              jobId,
              out.seq,
              out.status,
              out.miles,
              out.linehaul,
              out.fuel,
              out.total,
              out.perMile,
              out.model,
              out.flags,
              out.error,
              out.arm,
            ]
          );
          await client.query(
            `UPDATE controlroom.bulk_jobs SET lanes_rated = lanes_rated + $2, lanes_failed = lanes_failed + $3 WHERE id = $1`,
            [jobId, rows.length - failed, failed]
          );
          return false;
        });
        if (done) break;
      }
      await finish(pool, jobId, job.agent_task_id, job.company_id, null);
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
