import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Router } from 'express';
import { Counter, type Registry } from 'prom-client';
import type { AlertingConfig } from '../config.ts';
import type { Pool } from '../../core/db.ts';
import type { Logger } from '../../core/logger.ts';
import { decodeUtf8, parseInput, readBody } from '../../core/http.ts';
import { isPostgresDataException, UserError } from '../../core/errors.ts';
import { checkAuthorization, checkGrafanaSignature, type WebhookCredentials } from './auth.ts';
import { NotificationInbox } from './inbox.ts';
import type { IngestPriority } from '../../core/ingest-priority.ts';
import type { DirectRoute } from '../../core/direct-routes.ts';
import { alertmanagerPayload, grafanaPayload, type AlertSource } from './payloads.ts';

export type ReceiverConfig = Pick<
  AlertingConfig,
  | 'ALERTMANAGER_WEBHOOK_TOKEN'
  | 'ALERTMANAGER_WEBHOOK_BASIC_AUTH'
  | 'GRAFANA_WEBHOOK_TOKEN'
  | 'GRAFANA_WEBHOOK_BASIC_AUTH'
  | 'GRAFANA_WEBHOOK_HMAC_SECRET'
  | 'GRAFANA_WEBHOOK_TIMESTAMP_HEADER'
  | 'ALERT_INBOX_BATCHES'
>;

/** Alertmanager and Grafana batch alerts; 5 MiB holds thousands. The raw bytes are kept for signatures. */
export const MAX_WEBHOOK_BYTES = 5 * 1024 * 1024;

/** The body's text (stored as the notification's payload, as sent) and its JSON. */
function parseJson(body: Buffer): { text: string; json: unknown } {
  if (body.length === 0) throw new UserError(400, 'empty body: expected a JSON notification');
  const text = decodeUtf8(body, 'the body');
  try {
    return { text, json: JSON.parse(text) as unknown };
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new UserError(400, `body is not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * A value that passed validation but that Postgres cannot store (SQLSTATE class 22, data exception: a
 * number beyond numeric's range, \u0000 or a lone surrogate escape in a string, a date out of range) is the
 * sender's mistake: a 400 naming it, not a 500 that Alertmanager would retry for ever. The inbox stores a
 * failed batch again one notification at a time, so the error that reaches a webhook is its own.
 */
function refusedByPostgres(error: unknown, source: AlertSource): UserError | null {
  if (!isPostgresDataException(error)) return null;
  return new UserError(400, `${source} notification cannot be stored: ${(error as Error).message}`);
}

const serverTiming = (phases: Record<string, number>) =>
  Object.entries(phases)
    .map(([name, ms]) => `${name};dur=${ms.toFixed(2)}`)
    .join(', ');

/**
 * The webhooks' inbox, on `pool`: the alerting feature gives it a pool of its own that keeps its
 * connections (ALERT_INBOX_BATCHES of them), warmed at start-up (NotificationInbox.warm).
 */
export const receiverInbox = (
  pool: Pool,
  config: Pick<ReceiverConfig, 'ALERT_INBOX_BATCHES'>,
  logger?: Logger,
  /** Told of the inbox's backlogs, so the alert-group jobs of this process step aside (core/ingest-priority.ts). */
  priority?: IngestPriority
) =>
  new NotificationInbox(
    pool,
    config.ALERT_INBOX_BATCHES,
    (error, size) =>
      logger?.warn({ err: error, size }, 'a batch of alert notifications failed: storing each on its own'),
    priority
  );

/** A request header as one string (Node joins a repeated custom header with ', '). */
const headerOf = (req: IncomingMessage, name: string): string | undefined => {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
};

/** The webhooks' two ways in, one handler behind both (core/direct-routes.ts). */
export interface ReceiverRoutes {
  /** /alertmanager and /grafana, for every spelling Express matches (a trailing slash, another case). */
  router: Router;
  /** The same two paths, exactly as spelled, answered ahead of Express. */
  direct: DirectRoute[];
}

/**
 * /webhooks/alertmanager and /webhooks/grafana (Slack's button presses: slack/routes.ts), stored by `inbox`.
 * The handler works on Node's own request and response (no Express API), so the same handler serves both
 * the direct routes and the router; either way an error is answered by core/http.ts answerError.
 */
export function receiverRoutes(inbox: NotificationInbox, config: ReceiverConfig, registry: Registry): ReceiverRoutes {
  const received = new Counter({
    name: 'controlroom_alert_notifications_total',
    help: 'Alert webhook notifications by source and outcome (accepted, duplicate, rejected).',
    labelNames: ['source', 'outcome'],
    registers: [registry],
  });
  const credentials: Record<AlertSource, WebhookCredentials> = {
    alertmanager: { bearerToken: config.ALERTMANAGER_WEBHOOK_TOKEN, basicAuth: config.ALERTMANAGER_WEBHOOK_BASIC_AUTH },
    grafana: { bearerToken: config.GRAFANA_WEBHOOK_TOKEN, basicAuth: config.GRAFANA_WEBHOOK_BASIC_AUTH },
  };

  // Credentials are checked from the headers before a byte of the body is read, so an unauthenticated
  // caller cannot make us read (or buffer) 5 MiB. Every refusal, 413 included, counts as `rejected`.
  const notificationHandler = (source: AlertSource) => async (req: IncomingMessage, res: ServerResponse) => {
    try {
      checkAuthorization(headerOf(req, 'authorization'), credentials[source], source);
      const started = performance.now();
      const body = await readBody(req, MAX_WEBHOOK_BYTES);
      const read = performance.now() - started;
      if (source === 'grafana' && config.GRAFANA_WEBHOOK_HMAC_SECRET) {
        const timestampHeader = config.GRAFANA_WEBHOOK_TIMESTAMP_HEADER;
        checkGrafanaSignature(
          body,
          config.GRAFANA_WEBHOOK_HMAC_SECRET,
          headerOf(req, 'x-grafana-alerting-signature'),
          timestampHeader ? headerOf(req, timestampHeader.toLowerCase()) : undefined,
          Boolean(timestampHeader)
        );
      }
      const { text, json } = parseJson(body);
      const payload =
        source === 'alertmanager'
          ? parseInput(alertmanagerPayload, json, 'alertmanager notification')
          : parseInput(grafanaPayload, json, 'grafana notification');
      const parse = performance.now() - started - read;
      const stored = await inbox.store(source, payload, text).catch((error: unknown) => {
        throw refusedByPostgres(error, source) ?? error;
      });
      received.inc({ source, outcome: stored.newEvents > 0 ? 'accepted' : 'duplicate' });
      // Where the time went (bench/receiver reads it; the rest of the caller's wait is HTTP and the event loop).
      // Written directly, not through express's res.json: under a storm every answer of a batch is written
      // in one turn of the event loop, and res.send's ETag (a SHA-1 of the body) and freshness check buy
      // nothing for a POST's answer.
      const answer = JSON.stringify({
        status: 'accepted',
        notification_id: stored.notificationId,
        new_events: stored.newEvents,
        duplicates: stored.duplicates,
      });
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(answer),
        'server-timing': serverTiming({ read, parse, ...stored.timings }),
      });
      res.end(answer);
    } catch (error) {
      if (error instanceof UserError) received.inc({ source, outcome: 'rejected' });
      throw error;
    }
  };

  const direct = (['alertmanager', 'grafana'] as const).map((source) => ({
    method: 'POST' as const,
    path: `/${source}`,
    handle: notificationHandler(source),
  }));
  const router = express.Router();
  for (const route of direct) router.post(route.path, route.handle);
  return { router, direct };
}
