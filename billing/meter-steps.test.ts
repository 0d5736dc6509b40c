import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../core/logger.ts';
import { startHttpRecorder, type HttpRecorder } from '../testing/http-recorder.ts';
import { createTestDatabase, type TestDatabase } from '../testing/postgres.ts';
import { loadBillingConfig, type BillingConfig } from './config.ts';
import { sendPending } from './meter.ts';
import { createStripeClient, type Stripe } from './stripe.ts';

/**
 * Each meter event of a batch is its own step: one failing (before Stripe stored it, or after, with the
 * answer lost) is retried alone, and Stripe ends up holding every event exactly once.
 */
const logger = createLogger('silent');
let db: TestDatabase;
let fake: HttpRecorder;
let config: BillingConfig;
let stripe: Stripe;

/** Meter events Stripe stored, by identifier (it refuses a second event with the same identifier). */
const stored = new Map<string, number>();
/** Call number (from 1, since the last arm()) → how that call fails. */
let failures = new Map<number, 'before-storing' | 'after-storing'>();
let calls = 0;
const arm = (plan: Array<[number, 'before-storing' | 'after-storing']>) => {
  failures = new Map(plan);
  calls = 0;
};

before(async () => {
  db = await createTestDatabase();
  fake = await startHttpRecorder((call) => {
    if (call.method !== 'POST' || call.path !== '/v1/billing/meter_events')
      return { status: 404, body: { error: { type: 'invalid_request_error', message: 'no such route' } } };
    const identifier = new URLSearchParams(call.body).get('identifier')!;
    const failure = failures.get(++calls);
    if (failure === 'before-storing')
      return { status: 500, body: { error: { type: 'api_error', message: 'stripe is down' } } };
    if (stored.has(identifier)) {
      return {
        status: 400,
        body: {
          error: {
            type: 'invalid_request_error',
            code: 'resource_already_exists',
            message: `An event with identifier ${identifier} already exists.`,
          },
        },
      };
    }
    stored.set(identifier, (stored.get(identifier) ?? 0) + 1);
    if (failure === 'after-storing')
      return { status: 500, body: { error: { type: 'api_error', message: 'answer lost' } } };
    return { status: 200, body: { object: 'billing.meter_event', identifier, created: 1 } };
  });
  config = loadBillingConfig({
    STRIPE_SECRET_KEY: 'sk_test_fake',
    STRIPE_API_HOST: '127.0.0.1',
    STRIPE_API_PORT: new URL(fake.url).port,
    STRIPE_API_PROTOCOL: 'http',
    STRIPE_MAX_NETWORK_RETRIES: '0',
    BILLING_METER_CONCURRENCY: '1',
    BILLING_METER_RETRY_BASE_SECONDS: '1',
  });
  stripe = createStripeClient(config)!;
});
after(async () => {
  await fake.close();
  await db.drop();
});

async function outbox(count: number): Promise<string[]> {
  const identifiers = Array.from({ length: count }, () => `cr:test:${randomUUID()}`);
  for (const [i, identifier] of identifiers.entries()) {
    await db.pool.query(
      `INSERT INTO controlroom.billing_meter_events
         (identifier, company_id, feature, event_name, stripe_customer_id, qty, units_from, period_start, event_timestamp, created_at)
       VALUES ($1, $2, 'rates', 'rates_overage', 'cus_T', 10, 0, date_trunc('month', now())::date, now(), now() + make_interval(secs => $3))`,
      [identifier, randomUUID(), i]
    );
  }
  return identifiers;
}

/** Sends until the outbox is empty, making failed rows due at once (the backoff is not under test). */
async function sendUntilEmpty(): Promise<number> {
  for (let run = 1; run <= 5; run++) {
    const result = await sendPending(db.pool, stripe, config, logger);
    if (result.failed.length === 0) return run;
    await db.pool.query(`UPDATE controlroom.billing_meter_events SET next_attempt_at = now() WHERE sent_at IS NULL`);
  }
  throw new Error('the outbox did not empty in 5 runs');
}

describe('Stripe meter events', () => {
  for (const mode of ['before-storing', 'after-storing'] as const) {
    test(`each event of a batch failing in turn (${mode}) is stored at Stripe once, and sent`, async () => {
      for (const failing of [1, 2, 3]) {
        const identifiers = await outbox(3);
        arm([[failing, mode]]);
        assert.equal(await sendUntilEmpty(), 2, `call ${failing} failing: one retry run`);
        assert.equal(calls, 4, 'three events and one retry: no event sent again once accepted');
        for (const identifier of identifiers) assert.equal(stored.get(identifier), 1, `${identifier} stored once`);
        const { rows } = await db.pool.query<{ unsent: number }>(
          `SELECT count(*) FILTER (WHERE sent_at IS NULL)::int AS unsent FROM controlroom.billing_meter_events WHERE identifier = ANY($1)`,
          [identifiers]
        );
        assert.equal(rows[0]!.unsent, 0);
      }
    });
  }
});
