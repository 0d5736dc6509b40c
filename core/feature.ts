import type { Router } from 'express';
import type { Registry } from 'prom-client';
import type { Pool } from './db.ts';
import type { DirectRoute } from './direct-routes.ts';
import type { TaskList } from './jobs.ts';
import type { IngestPriority } from './ingest-priority.ts';
import type { Logger } from './logger.ts';

/**
 * The one shape every feature module has (exporter, alerting, billing, control/bulk, control/failover,
 * control/rating, control/limits, evidence): its entry point is `create…(deps)` in the feature's
 * index.ts, returning a Feature, and cli/services.ts is a list of them plus the generic wiring.
 *
 * The wiring's order, which every feature may rely on:
 * 1. every feature is created (synchronously: no I/O, nothing started), so all routers and tasks are known;
 * 2. the job queue starts with the union of all `tasks` (a name claimed twice stops start-up);
 * 3. each feature's `start()` runs in list order, once the queue runs and before the HTTP server listens,
 *    so it may queue jobs and read the database, and no request reaches a feature that has not started;
 * 4. the HTTP server listens with every `apiRouter` under /api and every `webhookRouter` under /webhooks,
 *    each of the `directWebhooks` answered ahead of them.
 * On shutdown, and when a start-up step fails, it is undone last first: the server stops accepting and
 * answers what is in flight, then each started feature's `stop()` runs in reverse list order, then the
 * queue stops (jobs in flight finish), then the pools close.
 */
export interface Feature {
  /** Names the feature in logs and in start-up errors. */
  readonly name: string;
  /** Mounted under /api, behind the control API's access check (core/access.ts). */
  readonly apiRouter?: Router;
  /** Mounted under /webhooks: each route authenticates its caller itself (tokens, signatures). */
  readonly webhookRouter?: Router;
  /**
   * Webhooks answered ahead of Express (core/direct-routes.ts), by their exact path under /webhooks
   * ('/alertmanager'); each must also be in `webhookRouter`, which serves the path's other spellings.
   */
  readonly directWebhooks?: readonly DirectRoute[];
  /** Queue task handlers, by task name; each name is declared with its payload in GraphileWorker.Tasks. */
  readonly tasks?: TaskList;
  /** Starts background work (timers, engines) and queues first jobs. Throwing fails start-up. */
  start?(): Promise<void>;
  /** Stops what start() started; jobs and requests still in flight may use the pools until it resolves. */
  stop?(): Promise<void>;
  /** Brings background snapshots up to date now instead of at the next tick (tests; the exporter's collectors). */
  refresh?(): Promise<void>;
}

/** What the wiring hands every feature's `create…(deps)`; `config` is the feature's own keys (and shared ones). */
export interface FeatureDeps<Config> {
  /** Serves HTTP handlers and the exporter (bounded by PG_POOL_MAX). */
  pool: Pool;
  /** Serves queue tasks: the job queue's own pool, so jobs never starve HTTP handlers or the exporter. */
  workerPool: Pool;
  /**
   * A dedicated small pool for work that must never wait behind others (failover's lease renewals, the
   * webhook inbox); closed by the wiring after every feature stopped. `keepConnections`: its idle
   * connections stay open (a new Postgres session costs 20-70 ms here, and its first statement several
   * times a warm one's).
   */
  openPool(applicationName: string, max: number, options?: { keepConnections?: boolean }): Pool;
  config: Config;
  logger: Logger;
  /** The registry /metrics serves: a feature registers its own counters here. */
  registry: Registry;
  /**
   * The webhooks' backlog, one per process and shared with its job-queue thread (core/ingest-priority.ts);
   * absent (tests), a feature that needs one makes its own.
   */
  ingestPriority?: IngestPriority;
}
