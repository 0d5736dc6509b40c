import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startReceiverHarness, type ReceiverHarness } from '../testing/receiver-harness.ts';
import { insertCompany } from '../testing/companies.ts';
import { startHttpRecorder, type HttpRecorder } from '../testing/http-recorder.ts';

/** Billing as wired in the service: the billing tick runs on the job queue and meters overage to Stripe. */
let h: ReceiverHarness;
let stripe: HttpRecorder;

before(async () => {
  stripe = await startHttpRecorder((call) =>
    call.path === '/v1/billing/meter_events'
      ? {
          status: 200,
          body: {
            object: 'billing.meter_event',
            identifier: new URLSearchParams(call.body).get('identifier'),
            created: 1,
          },
        }
      : { status: 404, body: { error: { type: 'invalid_request_error', message: 'no such route' } } }
  );
  h = await startReceiverHarness({
    STRIPE_SECRET_KEY: 'sk_test_fake',
    STRIPE_WEBHOOK_SECRET: 'whsec_test_secret',
    STRIPE_API_HOST: '127.0.0.1',
    STRIPE_API_PORT: new URL(stripe.url).port,
    STRIPE_API_PROTOCOL: 'http',
    STRIPE_MAX_NETWORK_RETRIES: '0',
    BILLING_TICK_SECONDS: '1',
  });
});
after(async () => {
  await h.stop();
  await stripe.close();
});

test('usage above the soft limit is metered to Stripe by the queued billing tick, once per unit', async () => {
  const companyId = await insertCompany(h.db.pool, 'Metered Freight', 'pro', { stripeCustomerId: 'cus_metered' });
  // pro rates: 500 included (soft), 1000 hard -> 250 overage units
  await h.db.pool.query(`INSERT INTO usage_events (company_id, feature_key, qty) VALUES ($1, 'rates', 750)`, [
    companyId,
  ]);
  const call = await stripe.waitFor((c) => c.path === '/v1/billing/meter_events', 30_000);
  const form = new URLSearchParams(call.body);
  assert.equal(form.get('payload[stripe_customer_id]'), 'cus_metered');
  assert.equal(form.get('payload[value]'), '250');
  assert.match(form.get('identifier') ?? '', new RegExp(`^cr:${companyId}:rates:`));
  await new Promise((r) => setTimeout(r, 3_000)); // more ticks pass with no new usage
  assert.equal(stripe.calls.filter((c) => c.path === '/v1/billing/meter_events').length, 1);
  // Mounted (an unknown route would be 404) and guarded: this harness sets no CONTROLROOM_API_SECRET.
  const res = await fetch(`${h.base}/api/usage/${companyId}`);
  assert.equal(res.status, 503);
  assert.match(((await res.json()) as { error: string }).error, /CONTROLROOM_API_SECRET/);
});
