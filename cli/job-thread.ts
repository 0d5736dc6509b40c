import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Registry } from 'prom-client';
import { createPool, poolTimeouts, type Pool } from '../core/db.ts';
import type { FeatureDeps } from '../core/feature.ts';
import { IngestPriority } from '../core/ingest-priority.ts';
import { startJobQueue, type JobQueue } from '../core/jobs.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import type { Config } from './config.ts';
import { FEATURES, taskListOf } from './services.ts';

/**
 * The job queue on a thread of its own (JOB_QUEUE_THREAD=true; off by default). The queue's tasks (alert
 * groups, the Slack pager and its pacing, freeze syncs, bulk rating, billing, evidence) are CPU work and
 * database round trips; on the HTTP process's event loop they run between webhook answers and stretch the
 * slowest ones. On a worker thread they get their own event loop, and the HTTP loop only reads requests,
 * stores them and answers. bench/receiver runs both shapes in one run; on 2 cores the difference stayed
 * within the run-to-run noise (whichever shape ran second was faster), so the default is the loop.
 *
 * The thread builds the same features from the same configuration and takes only their tasks: no feature
 * is started there (start() runs once, on the main thread), no route is served, and the tasks use pools of
 * the thread's own (pg connections cannot cross threads). Every guarantee of the queue holds as before,
 * since it lives in Postgres: worker ids are the instance's (startJobQueue), so instance liveness and a
 * restart release what a killed process held; the Slack pacer is one per process as before, because every
 * task that calls Slack runs in this one thread. No task updates a metric of the /metrics registry (only
 * HTTP routes and the exporter do), so the thread's own registry serves no one.
 *
 * The alert-group jobs here wait out the HTTP thread's webhook backlog as they would on its loop: the
 * process's IngestPriority is passed in shared memory (core/ingest-priority.ts).
 *
 * Failure modes: a thread that fails to start fails start-up (startServices stops what it started). A
 * thread that dies later (an uncaught error in a task's callback) is logged and started again after
 * THREAD_RESTART_DELAY_MS (1 s): its database sessions ended with it, and startJobQueue first frees the jobs
 * still locked under this instance's worker ids, so the cut-off jobs run again, as after a kill -9.
 */
export const THREAD_RESTART_DELAY_MS = 1_000;

/** The queue's pool: each worker holds a LISTEN connection and one for its job, so it never starves the HTTP pool. */
export function createWorkerPool(databaseUrl: string, config: Config): Pool {
  return createPool(databaseUrl, {
    max: config.JOB_CONCURRENCY * 2 + 1,
    ...poolTimeouts(config),
    applicationName: 'controlroom-worker',
  });
}

interface ThreadInput {
  kind: 'controlroom-job-queue';
  databaseUrl: string;
  config: Config;
  /** The main logger's level: the thread logs no more than it does ('silent' in tests stays silent). */
  logLevel: string;
  /** The main thread's IngestPriority memory (shared, not copied): its inbox's backlog, seen here. */
  ingestBacklog?: SharedArrayBuffer;
}

interface RunningThread {
  worker: Worker;
  /** Settles when the thread has exited, however it ended. */
  exited: Promise<void>;
  workerIds: string[];
}

type ThreadMessage =
  | { type: 'ready'; workerIds: string[] }
  | { type: 'failed'; message: string; stack?: string }
  | { type: 'log'; line: string }
  | { type: 'stopped' };

const PINO_LEVELS: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

/** A log line of the thread (pino JSON), written through the main logger so it goes where every other line goes. */
function relayLog(logger: Logger, line: string): void {
  try {
    const {
      level,
      msg,
      time: _time,
      pid: _pid,
      hostname: _hostname,
      service: _service,
      ...fields
    } = JSON.parse(line) as Record<string, unknown>;
    logger[PINO_LEVELS[level as number] ?? 'info']({ thread: 'job-queue', ...fields }, String(msg ?? ''));
  } catch {
    logger.warn({ thread: 'job-queue', line }, 'job queue thread wrote a line that is not a log record');
  }
}

// The thread's entry does not go through the parent's tsx hooks on Node 20: tsx is registered inside it
// first (as bin/controlroom.mjs does for the main thread).
const THREAD_BOOT = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then(({ register }) => { register(); return import(${JSON.stringify(import.meta.url)}); })`;

/**
 * Starts the job queue in a worker thread and resolves once its workers run (their ids returned). stop()
 * lets the jobs in flight finish (graphile-worker's graceful stop), closes the thread's pools and ends it.
 */
export interface JobQueueThread extends JobQueue {
  /** Ends the thread abruptly, as an uncaught error in a task would (tests of the restart). */
  crash(): Promise<void>;
}

export interface JobQueueThreadOptions {
  /** The process's webhook backlog (core/ingest-priority.ts), which the thread's alert-group jobs wait out. */
  ingestPriority?: IngestPriority;
  /** After an unexpected exit, the wait before a new thread starts (THREAD_RESTART_DELAY_MS). */
  restartDelayMs?: number;
}

export async function startJobQueueThread(
  databaseUrl: string,
  config: Config,
  logger: Logger,
  { ingestPriority, restartDelayMs = THREAD_RESTART_DELAY_MS }: JobQueueThreadOptions = {}
): Promise<JobQueueThread> {
  const log = logger.child({ component: 'job-queue' });
  let stopping: Promise<void> | null = null;
  let restartTimer: NodeJS.Timeout | null = null;
  /** Set from a thread's unexpected exit until its successor runs (or failed to start). */
  let restarting: Promise<void> | null = null;

  const spawn = () =>
    new Promise<RunningThread>((resolve, reject) => {
      const input: ThreadInput = {
        kind: 'controlroom-job-queue',
        databaseUrl,
        config,
        logLevel: logger.level,
        ...(ingestPriority ? { ingestBacklog: ingestPriority.shared } : {}),
      };
      const worker = new Worker(THREAD_BOOT, { eval: true, workerData: input });
      const exited = new Promise<void>((resolveExit) => worker.once('exit', () => resolveExit()));
      let started = false;
      worker.on('message', (message: ThreadMessage) => {
        if (message.type === 'log') relayLog(logger, message.line);
        else if (message.type === 'ready') {
          started = true;
          resolve({ worker, exited, workerIds: message.workerIds });
        } else if (message.type === 'failed' && !started)
          reject(Object.assign(new Error(message.message), { stack: message.stack }));
      });
      worker.on('error', (error) => {
        if (!started) reject(error);
        else log.error({ err: error }, 'the job queue thread failed');
      });
      worker.on('exit', (code) => {
        if (!started) {
          reject(new Error(`the job queue thread exited (code ${code}) before its workers started`));
          return;
        }
        if (stopping) return;
        // Not asked to stop: jobs would stop running here. Start a new thread (see the module comment).
        log.error({ code }, `the job queue thread exited; starting it again in ${restartDelayMs} ms`);
        restarting = new Promise<void>((settle) => {
          restartTimer = setTimeout(() => {
            restartTimer = null;
            if (stopping) return settle();
            spawn()
              .then(
                (next) => {
                  current = next;
                  log.info('the job queue thread runs again');
                },
                (error: unknown) => log.fatal({ err: error }, 'the job queue thread could not be started again')
              )
              .finally(() => {
                restarting = null;
                settle();
              });
          }, restartDelayMs);
        });
      });
    });

  const first = await spawn();
  let current = first;
  return {
    workerIds: first.workerIds,
    async crash() {
      await current.worker.terminate();
    },
    stop() {
      stopping ??= (async () => {
        // A successor not started yet never is; one being started is stopped in turn, once it runs.
        if (restartTimer) {
          clearTimeout(restartTimer);
          restartTimer = null;
        } else if (restarting) await restarting;
        const { worker, exited } = current;
        const stopped = new Promise<void>((resolve) =>
          worker.on('message', (message: ThreadMessage) => message.type === 'stopped' && resolve())
        );
        worker.postMessage({ type: 'stop' });
        // An orderly stop answers 'stopped' once its jobs finished and its pools closed; nothing is left
        // to cut off then, so the thread is ended even if a stray handle would keep it alive. A thread that
        // died meanwhile only exits.
        await Promise.race([stopped, exited]);
        await worker.terminate();
      })();
      return stopping;
    },
  };
}

/** The thread's side: the features' tasks and the queue, on pools of its own. */
async function runInThread(input: ThreadInput, port: NonNullable<typeof parentPort>): Promise<void> {
  const post = (message: ThreadMessage) => port.postMessage(message);
  // While the features are built, their construction warnings (no Slack token, ...) are the main thread's
  // to give: it built the same features from the same configuration, and said so once.
  let building = true;
  const logger = createLogger(input.logLevel, {
    write(line: string) {
      if (!building) post({ type: 'log', line });
    },
  });
  const { config, databaseUrl } = input;
  const pools: Pool[] = [];
  const track = (pool: Pool) => (pools.push(pool), pool);
  const closePools = () => Promise.all(pools.map((p) => p.end())).then(() => undefined);
  try {
    // Pools connect lazily: those a feature opens for routes (the HTTP pool, bulk uploads) stay empty here.
    const workerPool = track(createWorkerPool(databaseUrl, config));
    const deps: FeatureDeps<Config> = {
      pool: track(
        createPool(databaseUrl, { max: config.PG_POOL_MAX, ...poolTimeouts(config), applicationName: 'controlroom' })
      ),
      workerPool,
      openPool: (applicationName, max, options) =>
        track(createPool(databaseUrl, { max, ...poolTimeouts(config), applicationName, ...options })),
      config,
      logger,
      registry: new Registry(),
      ...(input.ingestBacklog ? { ingestPriority: new IngestPriority(undefined, input.ingestBacklog) } : {}),
    };
    const taskList = taskListOf(FEATURES.map((create) => create(deps)));
    building = false;
    const queue = await startJobQueue({
      pool: workerPool,
      taskList,
      concurrency: config.JOB_CONCURRENCY,
      instanceId: config.CONTROLROOM_INSTANCE_ID,
      logger,
    });
    port.on('message', (message: { type: string }) => {
      if (message.type !== 'stop') return;
      void queue
        .stop()
        .then(closePools)
        .catch((error: unknown) => logger.error({ err: error }, 'stopping the job queue thread failed'))
        .finally(() => {
          post({ type: 'stopped' });
          port.close();
        });
    });
    post({ type: 'ready', workerIds: queue.workerIds });
  } catch (error) {
    await closePools().catch(() => undefined);
    const failure = error instanceof Error ? error : new Error(String(error));
    post({ type: 'failed', message: failure.message, ...(failure.stack ? { stack: failure.stack } : {}) });
    port.close();
  }
}

if (!isMainThread && parentPort && (workerData as ThreadInput | undefined)?.kind === 'controlroom-job-queue')
  await runInThread(workerData as ThreadInput, parentPort);
