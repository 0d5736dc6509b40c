import type { Server } from 'node:http';
import { WebClient, LogLevel } from '@slack/web-api';
import { createGitHubClient, FreezeStatusPublisher } from '../alerting/freeze/github.ts';
import { freezeTasks, requestFreezeSync } from '../alerting/freeze/jobs.ts';
import { freezeApiRouter, githubWebhookRouter } from '../alerting/freeze/routes.ts';
import { incidentsApiRouter } from '../alerting/incidents/routes.ts';
import { receiverRouter } from '../alerting/receiver/routes.ts';
import { receiverTasks } from '../alerting/worker.ts';
import { createBilling } from '../billing/index.ts';
import { BULK_RATE_TASK } from '../control/bulk/jobs.ts';
import { bulkRateTask } from '../control/bulk/process.ts';
import { bulkRatingRouter } from '../control/bulk/routes.ts';
import { limitRequestsRouter } from '../control/limits/routes.ts';
import { startFailover } from '../control/failover/index.ts';
import { createRatingService } from '../control/rating/index.ts';
import { pricingRouter } from '../control/rating/routes.ts';
import { ChannelPacer } from '../alerting/slack/pacer.ts';
import { SlackPager } from '../alerting/slack/pager.ts';
import { FreezeAnnouncer, freezeAnnouncementTasks } from '../alerting/slack/freeze-announcer.ts';
import { createAccessControl } from '../core/access.ts';
import { projectRoot } from '../core/config.ts';
import { type Config } from './config.ts';
import { createPool, poolTimeouts, type Pool } from '../core/db.ts';
import { startJobQueue, type JobQueue } from '../core/jobs.ts';
import type { Logger } from '../core/logger.ts';
import { evidenceApiRouter } from '../evidence/routes.ts';
import { evidenceTasks, scheduledEvidenceSettings, scheduleEvidence } from '../evidence/schedule.ts';
import { createExporter, type Exporter } from '../exporter/exporter.ts';
import path from 'node:path';
import { buildApp } from './app.ts';

export interface RunningServices {
  pool: Pool;
  exporter: Exporter;
  worker: JobQueue;
  server: Server;
  port: number;
  stop(): Promise<void>;
}

interface SlackOutlets {
  pager: SlackPager;
  freezeAnnouncer: FreezeAnnouncer;
}

/** One Slack client and one per-channel pacer for pages and freeze announcements alike. */
function slackOutlets(pool: Pool, config: Config, logger: Logger): SlackOutlets | null {
  if (!config.SLACK_BOT_TOKEN) {
    logger.warn('SLACK_BOT_TOKEN is not set: alerts are stored and acted on, but nobody is paged in Slack');
    return null;
  }
  const client = new WebClient(config.SLACK_BOT_TOKEN, {
    slackApiUrl: config.SLACK_API_URL,
    logLevel: LogLevel.ERROR,
    // 429s are waited out by the client (Retry-After); other failures fail the job, which the queue retries.
    retryConfig: { retries: 2, factor: 2, minTimeout: 200, maxTimeout: 2_000 },
  });
  const pacer = new ChannelPacer(config.SLACK_CHANNEL_INTERVAL_MS);
  const slackLogger = logger.child({ component: 'slack' });
  return {
    pager: new SlackPager(
      pool,
      client,
      pacer,
      {
        channels: { P1: config.SLACK_CHANNEL_P1, P2: config.SLACK_CHANNEL_P2, P3: config.SLACK_CHANNEL_P3 },
        escalationChannel: config.SLACK_ESCALATION_CHANNEL,
        escalationDelaySeconds: config.SLACK_ESCALATION_DELAY_SECONDS,
        stormThreshold: config.ALERT_STORM_THRESHOLD,
      },
      slackLogger,
    ),
    // Freeze changes are P2 news: the channel of urgent tickets.
    freezeAnnouncer: new FreezeAnnouncer(pool, client, pacer, config.SLACK_CHANNEL_P2, slackLogger),
  };
}

/**
 * Starts the exporter's background refresh, the alert worker and the HTTP server on a migrated database.
 * If a step fails (the port is taken, the database is down), what was already started is stopped before
 * the error is thrown, so a failed start-up never leaves timers, workers or pools keeping the process alive.
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
    // Each queue worker holds a LISTEN connection and one for its job: its own pool, so it never starves
    // the exporter or the HTTP handlers.
    const workerPool = createPool(databaseUrl, {
      max: config.JOB_CONCURRENCY * 2 + 1,
      ...poolTimeouts(config),
      applicationName: 'controlroom-worker',
    });
    // Lease renewals must never wait behind exporter queries or queue jobs: the failover has its own pool.
    const failoverPool = createPool(databaseUrl, { max: 3, ...poolTimeouts(config), applicationName: 'controlroom-failover' });
    // Pools close last, once nothing uses them.
    stops.push(async () => {
      await Promise.all([pool.end(), workerPool.end(), failoverPool.end()]);
    });
    const exporter = createExporter(pool, config, logger);
    exporter.runner.start();
    stops.push(() => exporter.runner.stop());
    const github = createGitHubClient(config);
    if (!github) logger.warn('GITHUB_TOKEN / GitHub App not set: the release freeze is decided but not published to GitHub');
    const slack = slackOutlets(workerPool, config, logger);
    const freezePublisher = github ? new FreezeStatusPublisher(workerPool, github, config) : null;
    const rating = createRatingService();
    const billing = createBilling(pool, workerPool, config, logger.child({ component: 'billing' }));
    const evidenceLog = logger.child({ component: 'evidence' });
    const evidence = scheduledEvidenceSettings(config, path.join(projectRoot, 'dashboards'));
    if (!evidence) evidenceLog.warn('EVIDENCE_DIR is not set (or EVIDENCE_SCHEDULE is off): no weekly evidence bundles are written');
    else if (!config.EVIDENCE_SIGNING_KEY || !config.PROMETHEUS_URL) {
      evidenceLog.warn('EVIDENCE_SIGNING_KEY or PROMETHEUS_URL is not set: every scheduled evidence bundle will fail (and alert)');
    }
    // Jobs in flight finish before the pools close (graphile-worker's graceful stop); one cut off by a
    // kill -9 is released by the next start (startJobQueue).
    const worker = await startJobQueue({
      pool: workerPool,
      taskList: {
        ...billing.tasks,
        [BULK_RATE_TASK]: bulkRateTask(workerPool, rating, config.BULK_RATE_BATCH, logger.child({ component: 'bulk-rating' })),
        ...receiverTasks(workerPool, slack?.pager ?? null, logger.child({ component: 'receiver' }), { timeZone: config.INCIDENT_SLA_TIME_ZONE }),
        ...freezeTasks(workerPool, { quietPeriodSeconds: config.FREEZE_QUIET_PERIOD_SECONDS }, freezePublisher, logger.child({ component: 'release-freeze' })),
        ...freezeAnnouncementTasks(slack?.freezeAnnouncer ?? null, logger.child({ component: 'release-freeze' })),
        ...(evidence ? evidenceTasks(workerPool, evidence, evidenceLog) : {}),
      },
      concurrency: config.JOB_CONCURRENCY,
      instanceId: config.CONTROLROOM_INSTANCE_ID,
      logger,
    });
    stops.push(() => worker.stop());
    const failover = await startFailover({ pool: failoverPool, config, logger: logger.child({ component: 'failover' }) });
    stops.push(() => failover.stop());
    const app = buildApp({
      pool,
      registry: exporter.registry,
      logger,
      webhooks: [receiverRouter(pool, config, exporter.registry), githubWebhookRouter(pool, config), billing.webhookRouter],
      access: createAccessControl(config, { logger: logger.child({ component: 'access' }) }),
      trustedProxy: config.CONTROLROOM_TRUSTED_PROXY,
      api: [
        freezeApiRouter(pool, config),
        bulkRatingRouter(pool, rating, config),
        limitRequestsRouter(pool),
        pricingRouter(pool),
        failover.apiRouter,
        billing.apiRouter,
        incidentsApiRouter(pool),
        evidenceApiRouter(pool, { dir: config.EVIDENCE_DIR, schedule: config.EVIDENCE_SCHEDULE, retentionDays: config.EVIDENCE_RETENTION_DAYS }),
      ],
    });
    // Decide the freeze once at start; each sync schedules the next (quiet periods, expiries, resyncs).
    await requestFreezeSync(pool);
    if (evidence) evidenceLog.info({ slot: await scheduleEvidence(pool, evidence), dir: evidence.dir }, 'weekly evidence bundle scheduled');
    await billing.start();
    const server = await new Promise<Server>((resolve, reject) => {
      // Express 5 calls the listen callback with the error too (EADDRINUSE): that is a failed start.
      const s = app.listen(config.PORT, config.HOST, (error?: Error) => (error ? reject(error) : resolve(s)));
    });
    // First to stop: no new request is accepted; those in flight are answered (idle keep-alive
    // connections are closed) before the workers and pools they use go.
    stops.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.PORT;
    logger.info({ port, host: config.HOST }, 'control room listening');
    return { pool, exporter, worker, server, port, stop: stopAll };
  } catch (error) {
    await stopAll().catch((stopError: unknown) => logger.error({ err: stopError }, 'stopping a failed start-up failed'));
    throw error;
  }
}
