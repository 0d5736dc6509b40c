import type { Server } from 'node:http';
import { Registry } from 'prom-client';
import { createAlertingFeature } from '../alerting/index.ts';
import { createBillingFeature } from '../billing/index.ts';
import { createBulkRatingFeature } from '../control/bulk/index.ts';
import { createFailoverFeature } from '../control/failover/index.ts';
import { failoverLeaseHandover } from '../control/failover/lease.ts';
import { createLimitsFeature } from '../control/limits/index.ts';
import { createRatingFeature } from '../control/rating/index.ts';
import { createAccessControl } from '../core/access.ts';
import { createPool, poolTimeouts, type Pool } from '../core/db.ts';
import type { Feature, FeatureDeps } from '../core/feature.ts';
import { claimInstance } from '../core/instance-liveness.ts';
import { IngestPriority } from '../core/ingest-priority.ts';
import { startJobQueue, type JobQueue, type TaskList } from '../core/jobs.ts';
import type { Logger } from '../core/logger.ts';
import { createEvidenceFeature } from '../evidence/index.ts';
import { createExporterFeature } from '../exporter/index.ts';
import { buildApp, createHttpServer } from './app.ts';
import type { Config } from './config.ts';
import { createWorkerPool, startJobQueueThread } from './job-thread.ts';

/**
 * The features of the service, in start order (stopped in reverse). Each is a `create…Feature(deps)`
 * returning core/feature.ts's Feature; everything else in this file is the same for all of them.
 */
export const FEATURES: ReadonlyArray<(deps: FeatureDeps<Config>) => Feature> = [
  createExporterFeature,
  createAlertingFeature,
  createBillingFeature,
  createBulkRatingFeature,
  createRatingFeature,
  createLimitsFeature,
  createEvidenceFeature,
  createFailoverFeature,
];

export interface RunningServices {
  pool: Pool;
  /** The registry /metrics serves (every feature's metrics). */
  registry: Registry;
  worker: JobQueue;
  server: Server;
  port: number;
  /** Every feature's refresh(): /metrics then shows the database as it is now (tests). */
  refresh(): Promise<void>;
  stop(): Promise<void>;
}

/** The union of the features' tasks; a task name claimed by two features is a wiring mistake, refused. */
export function taskListOf(features: readonly Feature[]): TaskList {
  const taskList: TaskList = {};
  const owner = new Map<string, string>();
  for (const feature of features) {
    for (const [name, task] of Object.entries(feature.tasks ?? {})) {
      const claimed = owner.get(name);
      if (claimed) throw new Error(`queue task ${name} is handled by both ${claimed} and ${feature.name}`);
      owner.set(name, feature.name);
      (taskList as Record<string, unknown>)[name] = task;
    }
  }
  return taskList;
}

/**
 * Starts every feature (the exporter's background refresh, the queue tasks, the failover engine, ...) and
 * the HTTP server on a migrated database. If a step fails (the port is taken, the database is down), what
 * was already started is stopped before the error is thrown, so a failed start-up never leaves timers,
 * workers or pools keeping the process alive.
 */
export async function startServices(databaseUrl: string, config: Config, logger: Logger): Promise<RunningServices> {
  // What stops each started part; on shutdown they run last first.
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  };
  try {
    const pool = createPool(databaseUrl, {
      max: config.PG_POOL_MAX,
      ...poolTimeouts(config),
      applicationName: 'controlroom',
    });
    // The queue's own pool, so jobs never starve the exporter or the HTTP handlers (with JOB_QUEUE_THREAD
    // the queue runs on a thread with a pool of its own: this one, which only tasks use, stays unconnected).
    const workerPool = createWorkerPool(databaseUrl, config);
    // Features that must never wait behind others (failover's lease renewals) get a pool of their own.
    const pools = [pool, workerPool];
    const openPool: FeatureDeps<Config>['openPool'] = (applicationName, max, options) => {
      const dedicated = createPool(databaseUrl, { max, ...poolTimeouts(config), applicationName, ...options });
      pools.push(dedicated);
      return dedicated;
    };
    // Pools close last, once nothing uses them.
    stops.push(async () => {
      await Promise.all(pools.map((p) => p.end()));
    });
    // Before the queue starts: this instance's id is claimed (a second live instance with the same id is
    // refused, since startJobQueue frees the jobs of its own id), and from now on the jobs of a dead
    // instance sharing the database are released to this one (core/instance-liveness.ts). Freed after
    // the queue stopped, so a graceful stop hands over no job in flight.
    const liveness = await claimInstance({
      pool: openPool('controlroom-liveness', 1),
      instanceId: config.CONTROLROOM_INSTANCE_ID,
      logger,
      // A dead instance's failover lease is expired at once, so the standby takes over within a sweep.
      handovers: [failoverLeaseHandover],
    });
    stops.push(() => liveness.stop());
    const registry = new Registry();
    // One per process: the webhooks' inbox marks its backlogs, the alert-group jobs (here or on the queue's
    // thread, which shares its memory) wait them out.
    const ingestPriority = new IngestPriority();
    const deps: FeatureDeps<Config> = { pool, workerPool, openPool, config, logger, registry, ingestPriority };
    const features = FEATURES.map((create) => create(deps));
    // Jobs in flight finish before the pools close (graphile-worker's graceful stop); one cut off by a
    // kill -9 is released by the next start (startJobQueue). On its own thread (cli/job-thread.ts), the
    // queue's work does not delay the HTTP answers.
    const worker = config.JOB_QUEUE_THREAD
      ? await startJobQueueThread(databaseUrl, config, logger, { ingestPriority })
      : await startJobQueue({
          pool: workerPool,
          taskList: taskListOf(features),
          concurrency: config.JOB_CONCURRENCY,
          instanceId: config.CONTROLROOM_INSTANCE_ID,
          logger,
        });
    stops.push(() => worker.stop());
    for (const feature of features) {
      await feature.start?.();
      if (feature.stop) stops.push(feature.stop.bind(feature));
    }
    const app = buildApp({
      pool,
      registry,
      logger,
      webhooks: features.flatMap((f) => (f.webhookRouter ? [f.webhookRouter] : [])),
      access: createAccessControl(config, { logger: logger.child({ component: 'access' }) }),
      trustedProxy: config.CONTROLROOM_TRUSTED_PROXY,
      trustedBalancer: config.CONTROLROOM_TRUSTED_BALANCER,
      api: features.flatMap((f) => (f.apiRouter ? [f.apiRouter] : [])),
    });
    const server = createHttpServer(
      app,
      features.flatMap((f) => f.directWebhooks ?? []),
      logger
    );
    await new Promise<void>((resolve, reject) => {
      // A server that cannot listen (EADDRINUSE) is a failed start.
      server.once('error', reject);
      server.listen(config.PORT, config.HOST, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Idle keep-alive connections outlive the callers' own idle timeouts (HTTP_KEEP_ALIVE_SECONDS).
    server.keepAliveTimeout = config.HTTP_KEEP_ALIVE_SECONDS * 1000;
    // First to stop: no new request is accepted; those in flight are answered (idle keep-alive
    // connections are closed) before the workers and pools they use go.
    stops.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.PORT;
    logger.info({ port, host: config.HOST }, 'control room listening');
    const refresh = async () => {
      await Promise.all(features.map((f) => f.refresh?.()));
    };
    return { pool, registry, worker, server, port, refresh, stop: stopAll };
  } catch (error) {
    await stopAll().catch((stopError: unknown) =>
      logger.error({ err: stopError }, 'stopping a failed start-up failed')
    );
    throw error;
  }
}
