import express, { type Request, type Router } from 'express';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../../core/config.ts';
import type { Pool } from '../../core/db.ts';
import { HttpError } from '../../core/http.ts';
import { handleSlackInteraction, verifySlackSignature } from '../slack/interactions.ts';
import { checkAuthorization, checkGrafanaSignature, type WebhookCredentials } from './auth.ts';
import { storeNotification } from './inbox.ts';
import { alertmanagerPayload, describeIssues, grafanaPayload, type AlertSource } from './payloads.ts';

export type ReceiverConfig = Pick<
  Config,
  | 'ALERTMANAGER_WEBHOOK_TOKEN'
  | 'ALERTMANAGER_WEBHOOK_BASIC_AUTH'
  | 'GRAFANA_WEBHOOK_TOKEN'
  | 'GRAFANA_WEBHOOK_BASIC_AUTH'
  | 'GRAFANA_WEBHOOK_HMAC_SECRET'
  | 'GRAFANA_WEBHOOK_TIMESTAMP_HEADER'
  | 'SLACK_SIGNING_SECRET'
>;

// The raw bytes are kept: signatures are computed over them, and JSON errors are reported by us.
const rawBody = express.raw({ type: () => true, limit: '5mb' });

function parseJson(req: Request): unknown {
  const body = req.body as Buffer | undefined;
  if (!body || body.length === 0) throw new HttpError(400, 'empty body: expected a JSON notification');
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new HttpError(400, `body is not valid JSON: ${(error as Error).message}`);
  }
}

/** /webhooks/alertmanager, /webhooks/grafana and /webhooks/slack/interactions. */
export function receiverRouter(pool: Pool, config: ReceiverConfig, registry: Registry): Router {
  const router = express.Router();
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

  const notificationHandler = (source: AlertSource) => async (req: Request, res: express.Response) => {
    try {
      checkAuthorization(req.header('authorization'), credentials[source], source);
      if (source === 'grafana' && config.GRAFANA_WEBHOOK_HMAC_SECRET) {
        const timestampHeader = config.GRAFANA_WEBHOOK_TIMESTAMP_HEADER;
        checkGrafanaSignature(
          req.body as Buffer,
          config.GRAFANA_WEBHOOK_HMAC_SECRET,
          req.header('x-grafana-alerting-signature'),
          timestampHeader ? req.header(timestampHeader) : undefined,
          Boolean(timestampHeader),
        );
      }
      const schema = source === 'alertmanager' ? alertmanagerPayload : grafanaPayload;
      const parsed = schema.safeParse(parseJson(req));
      if (!parsed.success) throw new HttpError(400, `invalid ${source} notification: ${describeIssues(parsed.error)}`);
      const stored = await storeNotification(pool, source, parsed.data);
      received.inc({ source, outcome: stored.newEvents > 0 ? 'accepted' : 'duplicate' });
      res.status(200).json({
        status: 'accepted',
        notification_id: stored.notificationId,
        new_events: stored.newEvents,
        duplicates: stored.duplicates,
      });
    } catch (error) {
      if (error instanceof HttpError) received.inc({ source, outcome: 'rejected' });
      throw error;
    }
  };

  router.post('/alertmanager', rawBody, notificationHandler('alertmanager'));
  router.post('/grafana', rawBody, notificationHandler('grafana'));
  router.post('/slack/interactions', rawBody, async (req, res) => {
    if (!config.SLACK_SIGNING_SECRET) throw new HttpError(503, 'Slack signing secret is not configured on this server');
    verifySlackSignature(req.body as Buffer, config.SLACK_SIGNING_SECRET, req.header('x-slack-request-timestamp'), req.header('x-slack-signature'));
    await handleSlackInteraction(pool, req.body as Buffer, { ip: req.ip ?? null, userAgent: req.header('user-agent') ?? null });
    res.status(200).end();
  });
  return router;
}
