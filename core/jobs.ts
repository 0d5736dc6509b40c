import { createHash } from 'node:crypto';
import { Logger as WorkerLogger, makeWorkerUtils, run, type TaskList } from 'graphile-worker';
import type { Pool, PoolClient } from './db.ts';
import type { Logger } from './logger.ts';

export type { TaskList };

export interface EnqueueOptions {
  /** One pending job per key: a later add replaces (or, with preserve_run_at, keeps the time of) the pending one. */
  jobKey?: string;
  runAt?: Date;
  jobKeyMode?: 'replace' | 'preserve_run_at';
  maxAttempts?: number;
  /** Jobs in one named queue run one at a time, in order. */
  queueName?: string;
}

/** A queue task's name: each is declared with its payload in GraphileWorker.Tasks, beside its handler. */
export type TaskName = keyof GraphileWorker.Tasks;

/**
 * Adds a graphile-worker job (graphile_worker.add_job in SQL). Pass the transaction's client to add it
 * atomically with the rows it acts on: the job then exists exactly when they do. The payload is checked
 * at compile time against the task's declaration in GraphileWorker.Tasks, which its handler reads.
 */
export async function enqueueJob<Name extends TaskName>(
  db: PoolClient | Pool,
  task: Name,
  payload: GraphileWorker.Tasks[Name],
  options: EnqueueOptions = {}
): Promise<void> {
  const params = [
    task,
    JSON.stringify(payload),
    options.queueName ?? null,
    options.runAt ?? null,
    options.maxAttempts ?? 25,
    options.jobKey ?? null,
    options.jobKeyMode ?? 'replace',
  ];
  // With a job key, add_job returns no job when the keyed job is locked by a worker between its two
  // steps; retried, it unlinks that job and adds a new one. Without the retry the caller would think the
  // work was queued while nothing was.
  for (let attempt = 0; attempt < 5; attempt++) {
    const { rows } = await db.query<{ id: string | null }>(
      `SELECT (graphile_worker.add_job(identifier => $1::text, payload => $2::json, queue_name => $3::text,
                                       run_at => $4::timestamptz, max_attempts => $5::int, job_key => $6::text,
                                       job_key_mode => $7::text)).id AS id`,
      params
    );
    if (rows[0]?.id != null) return;
  }
  throw new Error(`could not queue ${task} (job key ${options.jobKey}): the keyed job stayed locked`);
}

/**
 * Adds many keyed jobs of one task in one statement (graphile_worker.add_jobs): one round trip and one
 * wake-up of the workers for a whole batch, with enqueueJob's guarantees (replace mode; a job whose
 * keyed predecessor was locked mid-add is retried). The specs go in sorted by key, so two transactions
 * adding overlapping keys normally take the job rows in one order; add_jobs' plan does not promise that
 * order, so a caller adding several keys must survive a deadlock error (receiver/inbox.ts does). Keys
 * must be distinct (add_jobs cannot update one row twice in a statement).
 */
export async function enqueueJobs<Name extends TaskName>(
  db: PoolClient | Pool,
  task: Name,
  jobs: ReadonlyArray<{
    payload: GraphileWorker.Tasks[Name];
    jobKey: string;
    queueName?: string;
    maxAttempts?: number;
  }>
): Promise<void> {
  let missing = [...jobs].sort((a, b) => (a.jobKey < b.jobKey ? -1 : a.jobKey > b.jobKey ? 1 : 0));
  for (let i = 1; i < missing.length; i++) {
    if (missing[i]!.jobKey === missing[i - 1]!.jobKey)
      throw new Error(`enqueueJobs: job key ${missing[i]!.jobKey} twice`);
  }
  for (let attempt = 0; attempt < 5 && missing.length > 0; attempt++) {
    const { rows } = await db.query<{ key: string }>({
      name: 'controlroom.enqueue_jobs',
      text: `SELECT key FROM graphile_worker.add_jobs(ARRAY(
         SELECT ROW($1::text, j.payload, j.queue_name, NULL::timestamptz, j.max_attempts, j.job_key, NULL::int, NULL::text[])::graphile_worker.job_spec
           FROM unnest($2::json[], $3::text[], $4::int[], $5::text[]) WITH ORDINALITY AS j(payload, queue_name, max_attempts, job_key, position)
          ORDER BY j.position))`,
      values: [
        task,
        missing.map((j) => JSON.stringify(j.payload)),
        missing.map((j) => j.queueName ?? null),
        missing.map((j) => j.maxAttempts ?? 25),
        missing.map((j) => j.jobKey),
      ],
    });
    const added = new Set(rows.map((r) => r.key));
    missing = missing.filter((j) => !added.has(j.jobKey));
  }
  if (missing.length > 0)
    throw new Error(
      `could not queue ${task} (job keys ${missing.map((j) => j.jobKey).join(', ')}): the keyed jobs stayed locked`
    );
}

/** graphile-worker queue names are limited to 128 characters: long identities are hashed. */
export const queueNameFor = (prefix: string, identity: string) =>
  `${prefix}:${createHash('sha1').update(identity).digest('hex')}`;

/** The queue worker ids of an instance: `controlroom-<CONTROLROOM_INSTANCE_ID>-<n>`. */
const workerIdOf = (instanceId: string, n: number) => `controlroom-${instanceId}-${n}`;

/** The instance a queue worker id (workerIdOf) belongs to, or null for a worker that is not ours. */
export function instanceOfWorker(workerId: string): string | null {
  return /^controlroom-(.+)-\d+$/.exec(workerId)?.[1] ?? null;
}

export interface JobQueue {
  workerIds: string[];
  stop(): Promise<void>;
}

export interface JobQueueOptions {
  pool: Pool;
  taskList: TaskList;
  concurrency: number;
  /** Stable per instance (CONTROLROOM_INSTANCE_ID): two running instances must not share it. */
  instanceId: string;
  logger: Logger;
}

/**
 * The Postgres job queue (graphile-worker): jobs survive restarts and a failed job is retried with
 * exponential backoff. It runs `concurrency` single-job workers with stable ids, because a job a crashed
 * instance held stays locked (graphile-worker frees such locks only after four hours); on start each
 * instance first releases the jobs still locked under its own ids, so work cut off by a kill -9 resumes.
 */
export async function startJobQueue(options: JobQueueOptions): Promise<JobQueue> {
  const log = options.logger.child({ component: 'job-queue' });
  const logger = new WorkerLogger(() => (level, message, meta) => {
    // graphile-worker logs every completed job at info; that is debug detail for us. Postgres ending our
    // connections (57P01, as at Ctrl-C, when the embedded server stops with us) is a warning, not a fault.
    const shutdown =
      (meta as { error?: { code?: string } } | undefined)?.error?.code === '57P01' ||
      message.startsWith('Error occurred attempting to UNLISTEN');
    const method = level === 'error' && !shutdown ? 'error' : level === 'warning' || shutdown ? 'warn' : 'debug';
    log[method]({ ...meta }, message);
  });
  const workerIds = Array.from({ length: options.concurrency }, (_, i) => workerIdOf(options.instanceId, i));
  const utils = await makeWorkerUtils({ pgPool: options.pool, logger });
  try {
    await utils.forceUnlockWorkers(workerIds);
  } finally {
    await utils.release();
  }
  const runners = await Promise.all(
    workerIds.map((workerId) => {
      // run() honours workerId (for concurrency 1) although RunnerOptions does not declare it.
      const runnerOptions = {
        pgPool: options.pool,
        taskList: options.taskList,
        concurrency: 1,
        workerId,
        noHandleSignals: true,
        pollInterval: 1_000,
        logger,
      };
      return run(runnerOptions);
    })
  );
  let stopping: Promise<void> | null = null;
  return {
    workerIds,
    stop() {
      stopping ??= Promise.all(runners.map((r) => r.stop())).then(() => undefined);
      return stopping;
    },
  };
}
