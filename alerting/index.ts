/**
 * Alerting: the SLO rules (slo/, rules/, generated/) are files Prometheus loads; at run time this feature is
 * the webhook receiver (receiver/), Slack paging and freeze announcements (slack/), and the release freeze
 * with its GitHub side (freeze/). The rooms import only from this level (events.ts, tasks.ts,
 * freeze-cause.ts, config.ts) and from core/, never from each other; worker.ts and this file are the only
 * places that see all three (checked by core/layers.test.ts).
 */
import express from 'express';
import { LogLevel, WebClient } from '@slack/web-api';
import type { SharedConfig } from '../core/config.ts';
import type { Feature, FeatureDeps } from '../core/feature.ts';
import type { AlertingConfig } from './config.ts';
import { createGitHubClient, FreezeStatusPublisher } from './freeze/github.ts';
import { freezeTasks, requestFreezeSync } from './freeze/jobs.ts';
import { freezeApiRouter, githubWebhookRouter } from './freeze/routes.ts';
import { incidentsApiRouter } from './incidents/routes.ts';
import { IngestPriority } from '../core/ingest-priority.ts';
import { receiverInbox, receiverRoutes } from './receiver/routes.ts';
import { FreezeAnnouncer, freezeAnnouncementTasks } from './slack/freeze-announcer.ts';
import { ChannelPacer } from './slack/pacer.ts';
import { pagerTasks, SlackPager } from './slack/pager.ts';
import { slackWebhookRouter } from './slack/routes.ts';
import { receiverTasks } from './worker.ts';
import { scheduleSideEffectsPrune, sideEffectsRetentionTasks } from './side-effects-retention.ts';

export type { AlertingConfig } from './config.ts';
export { alertingConfigShape } from './config.ts';

interface SlackOutlets {
  pager: SlackPager;
  freezeAnnouncer: FreezeAnnouncer;
}

/** One Slack client and one per-channel pacer for pages and freeze announcements alike. */
function slackOutlets({ workerPool, config, logger }: FeatureDeps<AlertingConfig>): SlackOutlets | null {
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
      workerPool,
      client,
      pacer,
      {
        channels: { P1: config.SLACK_CHANNEL_P1, P2: config.SLACK_CHANNEL_P2, P3: config.SLACK_CHANNEL_P3 },
        escalationChannel: config.SLACK_ESCALATION_CHANNEL,
        escalationDelaySeconds: config.SLACK_ESCALATION_DELAY_SECONDS,
        stormThreshold: config.ALERT_STORM_THRESHOLD,
      },
      slackLogger
    ),
    // Freeze changes are P2 news: the channel of urgent tickets.
    freezeAnnouncer: new FreezeAnnouncer(workerPool, client, pacer, config.SLACK_CHANNEL_P2, slackLogger),
  };
}

/**
 * The alerting feature: /webhooks/alertmanager, /webhooks/grafana, /webhooks/slack/interactions and
 * /webhooks/github; /api/freeze and /api/incidents; the alert, Slack and freeze queue tasks. Without a Slack token or GitHub
 * credentials it still stores and acts on alerts and decides the freeze (warned at creation).
 */
export function createAlertingFeature(deps: FeatureDeps<AlertingConfig & SharedConfig>): Feature {
  const { pool, workerPool, config, logger, registry } = deps;
  const github = createGitHubClient(config);
  if (!github)
    logger.warn('GITHUB_TOKEN / GitHub App not set: the release freeze is decided but not published to GitHub');
  const slack = slackOutlets(deps);
  const freezePublisher = github ? new FreezeStatusPublisher(workerPool, github, config) : null;
  const freezeLogger = logger.child({ component: 'release-freeze' });
  // The webhooks' backlog, which this process's alert-group jobs wait out (ALERT_INGEST_PRIORITY_MS): the
  // wiring's, shared with the job queue's thread when it has one.
  const ingestPriority = deps.ingestPriority ?? new IngestPriority();
  // The webhooks' own connections, kept open and warmed at start: a storm after a quiet spell would
  // otherwise open a session (20-70 ms here) and run its first statement cold (26-34 ms against 4-9) for
  // the incident's first alerts, the ones that matter most. They also never wait behind other routes.
  const receiverLogger = logger.child({ component: 'receiver' });
  const inbox = receiverInbox(
    deps.openPool('controlroom-inbox', config.ALERT_INBOX_BATCHES, { keepConnections: true }),
    config,
    receiverLogger,
    ingestPriority
  );
  const receiver = receiverRoutes(inbox, config, registry);
  const webhookRouter = express.Router();
  webhookRouter.use(receiver.router, slackWebhookRouter(pool, config), githubWebhookRouter(pool, config));
  const apiRouter = express.Router();
  apiRouter.use(freezeApiRouter(pool, config), incidentsApiRouter(pool, { alertmanagerUrl: config.ALERTMANAGER_URL }));
  return {
    name: 'alerting',
    apiRouter,
    webhookRouter,
    // Ahead of Express: a storm's webhooks spent about a third of the event loop's time in it (core/direct-routes.ts).
    directWebhooks: receiver.direct,
    tasks: {
      ...receiverTasks(
        workerPool,
        slack?.pager ?? null,
        receiverLogger,
        { timeZone: config.INCIDENT_SLA_TIME_ZONE },
        { priority: ingestPriority, maxWaitMs: config.ALERT_INGEST_PRIORITY_MS }
      ),
      ...pagerTasks(slack?.pager ?? null),
      ...freezeTasks(
        workerPool,
        { quietPeriodSeconds: config.FREEZE_QUIET_PERIOD_SECONDS },
        freezePublisher,
        freezeLogger
      ),
      ...freezeAnnouncementTasks(slack?.freezeAnnouncer ?? null, freezeLogger),
      ...sideEffectsRetentionTasks(workerPool, config.SIDE_EFFECTS_RETENTION_DAYS, logger),
    },
    // Decide the freeze once at start; each sync schedules the next (quiet periods, expiries, resyncs).
    // The side-effect prune keeps a pending run's time (see scheduleSideEffectsPrune).
    start: async () => {
      // Not fatal: a webhook on a cold connection is slower, not wrong.
      await inbox
        .warm()
        .catch((error: unknown) =>
          receiverLogger.warn(
            { err: error },
            'warming the webhook inbox connections failed: the first webhooks may be slower'
          )
        );
      await requestFreezeSync(pool);
      await scheduleSideEffectsPrune(pool);
    },
  };
}
