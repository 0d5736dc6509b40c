import express, { type Router } from 'express';
import type { Pool } from '../core/db.ts';
import { withTransaction } from '../core/db.ts';
import { readBody } from '../core/http.ts';
import { UserError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { BillingConfig } from './config.ts';
import { applyStripeEvent } from './entitlements.ts';
import { webhookVerifier, type Stripe } from './stripe.ts';

/** Event ids ("evt_...") and types ("invoice.paid") are short printable ASCII. */
const STRIPE_TOKEN = /^[\x21-\x7e]{1,255}$/;

/**
 * POST /webhooks/stripe. The signature is checked on the raw body with the stripe library
 * (constructEvent: HMAC and timestamp tolerance); a bad one is a 400 and changes nothing. The event id
 * is recorded in the same transaction as its effect, so a redelivery answers 200 and does nothing, and
 * a crash in between leaves neither (Stripe then redelivers).
 */
export function stripeWebhookRouter(pool: Pool, config: BillingConfig, stripe: Stripe | null, logger: Logger): Router {
  const router = express.Router();
  const webhooks = webhookVerifier(stripe);
  router.post('/stripe', async (req, res) => {
    const secret = config.STRIPE_WEBHOOK_SECRET;
    if (!secret) throw new UserError(503, 'STRIPE_WEBHOOK_SECRET is not configured on this server');
    const signature = req.header('stripe-signature');
    if (!signature) throw new UserError(400, 'missing Stripe-Signature header');
    // Read only once the headers say it is worth it; Stripe's events are a few KiB.
    const body = await readBody(req, 1024 * 1024);
    let event: Stripe.Event;
    try {
      event = webhooks.constructEvent(body, signature, secret);
    } catch (error) {
      throw new UserError(400, `Stripe-Signature does not verify: ${(error as Error).message}`);
    }
    // A signed body is still only trusted to be JSON: an event needs its id, type and creation time.
    const shape = event as unknown as { id?: unknown; type?: unknown; created?: unknown } | null;
    const data = (shape as { data?: { object?: unknown } } | null)?.data;
    if (
      typeof shape !== 'object' ||
      shape === null ||
      typeof shape.id !== 'string' ||
      !STRIPE_TOKEN.test(shape.id) ||
      typeof shape.type !== 'string' ||
      !STRIPE_TOKEN.test(shape.type) ||
      typeof shape.created !== 'number' ||
      !Number.isSafeInteger(shape.created) ||
      shape.created < 0 ||
      shape.created > 4_102_444_800 ||
      typeof data?.object !== 'object' ||
      data.object === null
    ) {
      throw new UserError(400, 'the body is not a Stripe event (needs id, type, created and data.object)');
    }
    const result = await withTransaction(pool, 'READ COMMITTED', async (client) => {
      const claimed = await client.query(
        `INSERT INTO controlroom.stripe_events (id, type, created, outcome) VALUES ($1, $2, to_timestamp($3), 'processing')
         ON CONFLICT (id) DO NOTHING`,
        [event.id, event.type, event.created]
      );
      if (claimed.rowCount === 0) {
        const { rows } = await client.query<{ outcome: string }>(
          `SELECT outcome FROM controlroom.stripe_events WHERE id = $1`,
          [event.id]
        );
        return { duplicate: true, outcome: rows[0]?.outcome ?? 'unknown', companyId: null };
      }
      const applied = await applyStripeEvent(client, config, event).catch((error: unknown) => {
        // Only Stripe (or whoever holds the signing secret) gets here, yet a body that is signed but not
        // shaped like its type (data.object missing a field) must still be refused, with nothing written
        // (the transaction rolls back), rather than be a 500.
        if (error instanceof TypeError) {
          logger.warn(
            { event: shape.id, type: shape.type, err: error },
            'stripe event does not have the shape of its type'
          );
          throw new UserError(
            400,
            `event ${shape.id} does not have the shape of a ${shape.type} event: ${error.message}`
          );
        }
        throw error;
      });
      await client.query(`UPDATE controlroom.stripe_events SET outcome = $2, company_id = $3 WHERE id = $1`, [
        event.id,
        applied.outcome,
        applied.companyId,
      ]);
      return { duplicate: false, ...applied };
    });
    logger.info({ event: event.id, type: event.type, ...result }, 'stripe event');
    res.json({ received: true, id: event.id, duplicate: result.duplicate, outcome: result.outcome });
  });
  return router;
}
