import express, { type Router } from 'express';
import type { Pool } from '../../core/db.ts';
import { UserError } from '../../core/errors.ts';
import { readBody } from '../../core/http.ts';
import type { AlertingConfig } from '../config.ts';
import { handleSlackInteraction, verifySlackSignature } from './interactions.ts';

/** /webhooks/slack/interactions: the page buttons (acknowledge, resolve), signed by Slack. */
export function slackWebhookRouter(pool: Pool, config: Pick<AlertingConfig, 'SLACK_SIGNING_SECRET'>): Router {
  const router = express.Router();
  router.post('/slack/interactions', async (req, res) => {
    if (!config.SLACK_SIGNING_SECRET) throw new UserError(503, 'Slack signing secret is not configured on this server');
    if (!req.header('x-slack-request-timestamp') || !req.header('x-slack-signature')) {
      throw new UserError(401, 'missing X-Slack-Request-Timestamp or X-Slack-Signature header');
    }
    // Slack sends one small form per button press.
    const body = await readBody(req, 256 * 1024);
    verifySlackSignature(
      body,
      config.SLACK_SIGNING_SECRET,
      req.header('x-slack-request-timestamp'),
      req.header('x-slack-signature')
    );
    await handleSlackInteraction(pool, body, { ip: req.ip ?? null, userAgent: req.header('user-agent') ?? null });
    res.status(200).end();
  });
  return router;
}
