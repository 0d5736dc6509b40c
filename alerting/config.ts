import { z } from 'zod';
import { basicAuth, int, secret } from '../core/config.ts';
import { isKnownTimeZone } from './incidents/business-days.ts';

/**
 * Alerting's keys (spread into the service's schema by cli/config.ts): the webhook receiver's credentials,
 * Slack paging, incident SLAs, and the release freeze with its GitHub side.
 */
export const alertingConfigShape = {
  ALERTMANAGER_WEBHOOK_TOKEN: secret.optional(),
  ALERTMANAGER_WEBHOOK_BASIC_AUTH: basicAuth.optional(),
  GRAFANA_WEBHOOK_TOKEN: secret.optional(),
  // Alertmanager's base URL, for the Incidents page's "Silence for…" (its v2 API). Unset: silences are a 503.
  // `controlroom start` with its stack sets it to the child Alertmanager.
  ALERTMANAGER_URL: z.string().url().optional(),
  GRAFANA_WEBHOOK_BASIC_AUTH: basicAuth.optional(),
  GRAFANA_WEBHOOK_HMAC_SECRET: secret.optional(),
  GRAFANA_WEBHOOK_TIMESTAMP_HEADER: z.string().min(1).optional(),

  SLACK_BOT_TOKEN: z.string().min(1).optional(),
  SLACK_API_URL: z.string().url().default('https://slack.com/api/'),
  SLACK_SIGNING_SECRET: z.string().min(1).optional(),
  SLACK_CHANNEL_P1: z.string().min(1).default('#controlroom-pages'),
  SLACK_CHANNEL_P2: z.string().min(1).default('#controlroom-alerts'),
  SLACK_CHANNEL_P3: z.string().min(1).default('#controlroom-tickets'),
  SLACK_ESCALATION_CHANNEL: z.string().min(1).default('#controlroom-escalations'),
  SLACK_ESCALATION_DELAY_SECONDS: int(600),
  SLACK_CHANNEL_INTERVAL_MS: int(1_100),
  ALERT_STORM_THRESHOLD: int(10),
  // Batches the webhook inbox stores at once (group commit, receiver/inbox.ts); each is one statement and
  // holds a connection of the HTTP pool (PG_POOL_MAX) for that statement only. 1: on 2 cores, two or three
  // overlapping batches stored fewer notifications per second than one (smaller batches, more contention).
  ALERT_INBOX_BATCHES: int(1),
  // How long into a webhook backlog this process's alert-group jobs wait before they start (core/ingest-
  // priority.ts): a storm is acknowledged first and acted on right after; a backlog older than this (a
  // flood) delays nothing more. 0: never waits.
  ALERT_INGEST_PRIORITY_MS: z.coerce.number().int().min(0).max(60_000).default(2_000),
  // Days the record of a Slack/GitHub side effect done is kept (core/side-effects.ts) before a daily job
  // deletes it: a retry looks its step up within days, so a week is the least that stays safe.
  SIDE_EFFECTS_RETENTION_DAYS: z.coerce
    .number()
    .int()
    .min(7, 'at least 7 days: a queued retry may still look a side effect up days later')
    .default(30),

  // Incident response SLAs (alerting/incidents): the zone whose Monday–Friday are business days.
  INCIDENT_SLA_TIME_ZONE: z
    .string()
    .default('UTC')
    .superRefine((zone, ctx) => {
      if (!isKnownTimeZone(zone))
        ctx.addIssue({
          code: 'custom',
          message: `unknown time zone "${zone}": an IANA name such as UTC, Europe/Berlin or America/Chicago`,
        });
    }),

  FREEZE_QUIET_PERIOD_SECONDS: int(1_800),
  FREEZE_EXCEPTION_LABELS: z.string().default('p0-fix,security-fix'),
  GITHUB_API_URL: z.string().url().default('https://api.github.com'),
  GITHUB_TOKEN: z.string().min(1).optional(),
  GITHUB_APP_ID: z.string().regex(/^\d+$/, 'numeric App id').optional(),
  GITHUB_APP_PRIVATE_KEY: z.string().min(1).optional(),
  GITHUB_APP_INSTALLATION_ID: z.coerce.number().int().positive().optional(),
  GITHUB_REPOSITORIES: z
    .string()
    .regex(/^\s*[\w.-]+\/[\w.-]+\s*(,\s*[\w.-]+\/[\w.-]+\s*)*$/, 'comma-separated owner/repo')
    .optional(),
  GITHUB_WEBHOOK_SECRET: secret.optional(),
};

export type AlertingConfig = z.infer<z.ZodObject<typeof alertingConfigShape>>;
