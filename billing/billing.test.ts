import assert from 'node:assert/strict';
import { Usage } from '@controlroom/contract';
import type { Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import Stripe from 'stripe';
import { buildApp } from '../cli/app.ts';
import { createAccessControl } from '../core/access.ts';
import { createLogger } from '../core/logger.ts';
import { insertCompany } from '../testing/companies.ts';
import { startHttpRecorder, type HttpRecorder } from '../testing/http-recorder.ts';
import { createTestDatabase, type TestDatabase } from '../testing/postgres.ts';
import { loadBillingConfig, type BillingConfig } from './config.ts';
import { createBilling, type Billing } from './index.ts';
import { runBilling } from './jobs.ts';
import { meterIdentifier } from './meter.ts';

const WEBHOOK_SECRET = 'whsec_test_0123456789abcdef';
const API_SECRET = 'controlroom-api-secret-0123456789';
const logger = createLogger('silent');
const signer = new Stripe('sk_test_signer');

let db: TestDatabase;
let fake: HttpRecorder;
let failing = false;
let config: BillingConfig;
let billing: Billing;
let server: Server;
let base: string;

before(async () => {
  db = await createTestDatabase();
  fake = await startHttpRecorder((call) => {
    if (failing) return { status: 500, body: { error: { type: 'api_error', message: 'stripe is down' } } };
    if (call.method === 'POST' && call.path === '/v1/billing/meter_events') {
      const form = new URLSearchParams(call.body);
      return {
        status: 200,
        body: {
          object: 'billing.meter_event',
          identifier: form.get('identifier'),
          event_name: form.get('event_name'),
          created: 1,
        },
      };
    }
    return { status: 404, body: { error: { type: 'invalid_request_error', message: 'no such route' } } };
  });
  config = loadBillingConfig({
    STRIPE_SECRET_KEY: 'sk_test_fake',
    STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    STRIPE_API_HOST: '127.0.0.1',
    STRIPE_API_PORT: new URL(fake.url).port,
    STRIPE_API_PROTOCOL: 'http',
    STRIPE_MAX_NETWORK_RETRIES: '0',
    STRIPE_PRICE_PLANS: JSON.stringify({
      price_pro_monthly: 'pro',
      price_ent_monthly: 'enterprise',
      price_starter: 'starter',
    }),
    STRIPE_METER_EVENT_NAMES: JSON.stringify({ rates: 'rates_overage' }),
    BILLING_METER_RETRY_BASE_SECONDS: '1',
  });
  billing = createBilling(db.pool, db.pool, config, logger);
  const app = buildApp({
    pool: db.pool,
    registry: new Registry(),
    logger,
    webhooks: [billing.webhookRouter],
    api: [billing.apiRouter],
    access: createAccessControl({ CONTROLROOM_AUTH: 'shared-secret', CONTROLROOM_API_SECRET: API_SECRET }),
  });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

after(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  await fake?.close();
  await db?.drop();
});

const company = (name: string, plan = 'starter', customer: string | null = null) =>
  insertCompany(db.pool, name, plan, { stripeCustomerId: customer });

const entitlement = async (id: string) =>
  (
    await db.pool.query<{
      plan_id: string;
      billing_status: string;
      grace_until: Date | null;
      trial_ends_at: Date | null;
      current_period_end: Date | null;
      stripe_subscription_id: string | null;
    }>(
      `SELECT plan_id, billing_status, grace_until, trial_ends_at, current_period_end, stripe_subscription_id FROM org_entitlements WHERE company_id = $1`,
      [id]
    )
  ).rows[0]!;

let seq = 0;
function subscriptionEvent(
  type: string,
  created: number,
  sub: { id: string; customer: string; status: string; price: string; companyId?: string; trialEnd?: number }
) {
  return {
    id: `evt_${++seq}_${Math.random().toString(36).slice(2)}`,
    object: 'event',
    type,
    created,
    api_version: '2026-10-28.endive',
    data: {
      object: {
        id: sub.id,
        object: 'subscription',
        customer: sub.customer,
        status: sub.status,
        trial_end: sub.trialEnd ?? null,
        metadata: sub.companyId ? { company_id: sub.companyId } : {},
        items: {
          object: 'list',
          data: [
            {
              id: `si_${sub.id}`,
              object: 'subscription_item',
              price: { id: sub.price, object: 'price' },
              current_period_end: created + 30 * 86400,
            },
          ],
        },
      },
    },
  };
}

function invoiceEvent(type: string, created: number, subscription: string, customer: string) {
  return {
    id: `evt_${++seq}_${Math.random().toString(36).slice(2)}`,
    object: 'event',
    type,
    created,
    data: {
      object: {
        id: `in_${seq}`,
        object: 'invoice',
        customer,
        parent: { type: 'subscription_details', subscription_details: { subscription } },
      },
    },
  };
}

async function deliver(event: unknown, options: { secret?: string; tamper?: boolean } = {}) {
  const payload = JSON.stringify(event);
  const header = signer.webhooks.generateTestHeaderString({ payload, secret: options.secret ?? WEBHOOK_SECRET });
  const res = await fetch(`${base}/webhooks/stripe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': header },
    body: options.tamper ? payload.replace('"active"', '"canceled"') : payload,
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

const now = () => Math.floor(Date.now() / 1000);

describe('stripe webhooks', () => {
  test('subscription created/updated/deleted and invoice failed/succeeded change the entitlement', async () => {
    const id = await company('Webhook Freight');
    const t = now() - 1000;
    const sub = { id: 'sub_A', customer: 'cus_A', price: 'price_pro_monthly', companyId: id };

    let r = await deliver(
      subscriptionEvent('customer.subscription.created', t, { ...sub, status: 'trialing', trialEnd: t + 14 * 86400 })
    );
    assert.equal(r.status, 200);
    assert.equal(r.body.outcome, 'applied');
    let e = await entitlement(id);
    assert.equal(e.plan_id, 'pro');
    assert.equal(e.billing_status, 'trialing');
    assert.equal(e.trial_ends_at?.getTime(), (t + 14 * 86400) * 1000);
    assert.equal(e.stripe_subscription_id, 'sub_A');
    assert.equal(e.current_period_end?.getTime(), (t + 30 * 86400) * 1000);

    r = await deliver(
      subscriptionEvent('customer.subscription.updated', t + 10, {
        ...sub,
        status: 'active',
        price: 'price_ent_monthly',
      })
    );
    e = await entitlement(id);
    assert.deepEqual([e.plan_id, e.billing_status], ['enterprise', 'active']);

    r = await deliver(invoiceEvent('invoice.payment_failed', t + 20, 'sub_A', 'cus_A'));
    e = await entitlement(id);
    assert.equal(e.billing_status, 'grace');
    assert.equal(e.grace_until?.getTime(), (t + 20 + 7 * 86400) * 1000);
    assert.equal(e.plan_id, 'enterprise', 'the plan is kept during grace');

    r = await deliver(invoiceEvent('invoice.payment_succeeded', t + 30, 'sub_A', 'cus_A'));
    e = await entitlement(id);
    assert.deepEqual([e.billing_status, e.grace_until], ['active', null]);

    r = await deliver(subscriptionEvent('customer.subscription.deleted', t + 40, { ...sub, status: 'canceled' }));
    e = await entitlement(id);
    assert.deepEqual([e.plan_id, e.billing_status], ['revoked', 'canceled']);
  });

  test('the same event twice acts once', async () => {
    const id = await company('Twice Freight', 'starter', 'cus_B');
    const event = subscriptionEvent('customer.subscription.created', now() - 500, {
      id: 'sub_B',
      customer: 'cus_B',
      status: 'active',
      price: 'price_pro_monthly',
    });
    const first = await deliver(event);
    assert.equal(first.body.duplicate, false);
    // A later, newer change, then the first event redelivered: it must not undo the change.
    await deliver(
      subscriptionEvent('customer.subscription.updated', now() - 400, {
        id: 'sub_B',
        customer: 'cus_B',
        status: 'active',
        price: 'price_ent_monthly',
      })
    );
    const second = await deliver(event);
    assert.equal(second.status, 200);
    assert.equal(second.body.duplicate, true);
    assert.equal((await entitlement(id)).plan_id, 'enterprise');
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n FROM audit_log WHERE company_id = $1 AND action LIKE 'billing.%'`,
      [id]
    );
    assert.equal(rows[0].n, 2);
    const stored = await db.pool.query(`SELECT outcome FROM controlroom.stripe_events WHERE id = $1`, [event.id]);
    assert.equal(stored.rows[0].outcome, 'applied');
  });

  test('an older event arriving after a newer one is ignored', async () => {
    const id = await company('Order Freight', 'starter', 'cus_C');
    const t = now() - 300;
    await deliver(
      subscriptionEvent('customer.subscription.updated', t + 50, {
        id: 'sub_C',
        customer: 'cus_C',
        status: 'canceled',
        price: 'price_pro_monthly',
      })
    );
    const stale = await deliver(
      subscriptionEvent('customer.subscription.updated', t, {
        id: 'sub_C',
        customer: 'cus_C',
        status: 'active',
        price: 'price_ent_monthly',
      })
    );
    assert.equal(stale.body.outcome, 'stale');
    assert.deepEqual(
      [(await entitlement(id)).plan_id, (await entitlement(id)).billing_status],
      ['revoked', 'canceled']
    );

    // An older subscription update after a newer failed payment keeps the failed-payment status.
    const id2 = await company('Order Two', 'starter', 'cus_C2');
    await deliver(
      subscriptionEvent('customer.subscription.created', t, {
        id: 'sub_C2',
        customer: 'cus_C2',
        status: 'active',
        price: 'price_pro_monthly',
      })
    );
    await deliver(invoiceEvent('invoice.payment_failed', t + 20, 'sub_C2', 'cus_C2'));
    await deliver(invoiceEvent('invoice.payment_succeeded', t + 10, 'sub_C2', 'cus_C2'));
    assert.equal((await entitlement(id2)).billing_status, 'grace');
  });

  test('a bad signature is refused and changes nothing', async () => {
    const id = await company('Forged Freight', 'starter', 'cus_D');
    const event = subscriptionEvent('customer.subscription.created', now(), {
      id: 'sub_D',
      customer: 'cus_D',
      status: 'active',
      price: 'price_ent_monthly',
    });
    assert.equal((await deliver(event, { secret: 'whsec_wrong_secret_000000' })).status, 400);
    assert.equal((await deliver(event, { tamper: true })).status, 400);
    const unsigned = await fetch(`${base}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(event),
    });
    assert.equal(unsigned.status, 400);
    assert.equal((await entitlement(id)).plan_id, 'starter');
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM controlroom.stripe_events WHERE id = $1`, [
      event.id,
    ]);
    assert.equal(rows[0].n, 0);
  });
});

describe('overage billing, thresholds and the usage endpoint', () => {
  let id: string;
  before(async () => {
    // Delete the earlier tests' tenants' plans from this describe's view: they have no usage anyway.
    id = await company('Metered Freight', 'starter', 'cus_M'); // rates: 50 included (soft), hard 100 per month
  });

  const use = (qty: number) =>
    db.pool.query(`INSERT INTO usage_events (company_id, feature_key, qty) VALUES ($1, 'rates', $2)`, [id, qty]);
  const meterCalls = () =>
    fake.calls.filter((c) => c.path === '/v1/billing/meter_events').map((c) => new URLSearchParams(c.body));
  const tasks = async () =>
    (
      await db.pool.query<{ threshold: number }>(
        `SELECT (payload->>'threshold')::int AS threshold FROM agent_tasks WHERE company_id = $1 AND fn_name = 'notify_ops' ORDER BY id`,
        [id]
      )
    ).rows.map((r) => r.threshold);
  const outbox = async () =>
    Number(
      (await db.pool.query(`SELECT count(*) AS n FROM controlroom.billing_meter_events WHERE company_id = $1`, [id]))
        .rows[0].n
    );

  test('warnings at 80 and 90 % of the included amount come before any overage is billed, 100 % when billing starts', async () => {
    await use(35); // 70 %
    const run = await runBilling(db.pool, config, billing.stripe, logger);
    assert.deepEqual([run.notices.length, run.queued.length], [0, 0]);

    await use(8); // 43 of 50 included: 86 %
    await runBilling(db.pool, config, billing.stripe, logger);
    assert.deepEqual(await tasks(), [80]);
    assert.equal(await outbox(), 0, 'warned at 80 %, nothing billed');
    await use(3); // 46: 92 %
    await runBilling(db.pool, config, billing.stripe, logger);
    assert.deepEqual(await tasks(), [80, 90]);
    assert.equal(await outbox(), 0, 'warned at 90 %, nothing billed');
    await use(4); // 50: the included amount is used up
    await runBilling(db.pool, config, billing.stripe, logger);
    assert.deepEqual(await tasks(), [80, 90, 100]);
    assert.equal(await outbox(), 0, '100 %: the next unit is billed');
    const { rows: payloads } = await db.pool.query(
      `SELECT payload FROM agent_tasks WHERE company_id = $1 AND fn_name = 'notify_ops' ORDER BY id`,
      [id]
    );
    assert.deepEqual(
      payloads.map((r) => [
        r.payload.type,
        r.payload.threshold,
        r.payload.used,
        r.payload.limit,
        r.payload.soft_limit,
        r.payload.hard_limit,
        r.payload.overage,
        r.payload.unit,
        r.payload.source,
      ]),
      [
        ['limit_breach', 80, 43, 50, 50, 100, 0, 'quotes', 'billing'],
        ['limit_breach', 90, 46, 50, 50, 100, 0, 'quotes', 'billing'],
        ['limit_breach', 100, 50, 50, 50, 100, 0, 'quotes', 'billing'],
      ]
    );
  });

  test('overage above the included amount is sent once, with stable identifiers, across a Stripe outage', async () => {
    await use(10); // 60 of 50 included: 10 over
    failing = true;
    let run = await runBilling(db.pool, config, billing.stripe, logger);
    assert.equal(run.queued.length, 1);
    assert.equal(run.sent?.failed.length, 1);
    const { rows: periodRows } = await db.pool.query<{ p: string }>(
      `SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS p`
    );
    const period = periodRows[0]!.p;
    const firstId = meterIdentifier(id, 'rates', period, 0);
    assert.equal(run.queued[0]!.identifier, firstId);
    let row = (await db.pool.query(`SELECT * FROM controlroom.billing_meter_events WHERE identifier = $1`, [firstId]))
      .rows[0];
    assert.equal(row.sent_at, null);
    assert.equal(row.attempts, 1);
    assert.match(row.last_error, /stripe is down/);

    // Still down, and not due yet: nothing is sent or queued twice, notices stay single.
    run = await runBilling(db.pool, config, billing.stripe, logger);
    assert.equal(run.queued.length, 0);
    assert.deepEqual(await tasks(), [80, 90, 100]);

    // Stripe recovers; the row is due again.
    failing = false;
    await db.pool.query(`UPDATE controlroom.billing_meter_events SET next_attempt_at = now() WHERE identifier = $1`, [
      firstId,
    ]);
    run = await runBilling(db.pool, config, billing.stripe, logger);
    assert.deepEqual(run.sent?.sent, [firstId]);
    row = (await db.pool.query(`SELECT * FROM controlroom.billing_meter_events WHERE identifier = $1`, [firstId]))
      .rows[0];
    assert.ok(row.sent_at);
    const calls = meterCalls().filter((c) => c.get('identifier') === firstId);
    assert.ok(calls.length >= 2, 'the failed attempt and the successful one');
    assert.deepEqual(
      [
        ...new Set(
          calls.map(
            (c) =>
              `${c.get('identifier')}|${c.get('event_name')}|${c.get('payload[stripe_customer_id]')}|${c.get('payload[value]')}`
          )
        ),
      ],
      [`${firstId}|rates_overage|cus_M|10`],
      'every attempt carries the same identifier and value'
    );
    const okCalls = fake.calls.filter(
      (c) => c.path === '/v1/billing/meter_events' && new URLSearchParams(c.body).get('identifier') === firstId
    );
    assert.equal(
      new Set(okCalls.map((c) => c.headers['idempotency-key'])).size,
      1,
      'one Idempotency-Key for every attempt'
    );

    // Nothing more to send: no call.
    const before = meterCalls().length;
    await runBilling(db.pool, config, billing.stripe, logger);
    assert.equal(meterCalls().length, before);

    // 100 of 100 (the hard limit), 50 over: only the 40 new units are sent, under the next identifier.
    await use(40);
    run = await runBilling(db.pool, config, billing.stripe, logger);
    assert.deepEqual(await tasks(), [80, 90, 100], 'no second notice in the period');
    const second = meterIdentifier(id, 'rates', period, 10);
    assert.deepEqual(run.sent?.sent, [second]);
    assert.equal(meterCalls().at(-1)?.get('payload[value]'), '40');

    const sum = await db.pool.query(
      `SELECT sum(qty)::int AS n FROM controlroom.billing_meter_events WHERE company_id = $1 AND sent_at IS NOT NULL`,
      [id]
    );
    assert.equal(sum.rows[0].n, 50);
  });

  test('GET /api/usage/:company reports usage, limits and overage (Viewer)', async () => {
    const get = (role?: string) =>
      fetch(`${base}/api/usage/${id}`, {
        headers: role
          ? {
              'x-controlroom-secret': API_SECRET,
              'x-grafana-context': JSON.stringify({ Login: 'vera', OrgRole: role }),
            }
          : {},
      });
    assert.equal((await get()).status, 401);
    const res = await get('Viewer');
    assert.equal(res.status, 200);
    const body = Usage.parse(await res.json());
    assert.equal(body.plan, 'starter');
    assert.equal(body.billingStatus, 'active');
    const rates = body.features.find((f) => f.feature === 'rates')!;
    assert.equal(rates.used, 100);
    assert.equal(rates.unit, 'quotes');
    assert.equal(rates.softLimit, 50);
    assert.equal(rates.hardLimit, 100);
    assert.equal(rates.remaining, 0);
    assert.equal(rates.percent, 200, 'percent of the included amount');
    assert.equal(rates.overage, 50);
    assert.equal(rates.overageBilled, 50);
    assert.equal(rates.overagePending, 0);
    assert.deepEqual(rates.thresholdsCrossed, [80, 90, 100]);
    assert.deepEqual(rates.thresholdsNotified, [80, 90, 100]);
    assert.equal(rates.blocked, true);
    assert.equal(rates.period, 'month');
    assert.deepEqual(
      body.features.map((f) => f.feature).sort(),
      ['directory', 'rates'],
      'starter lists rates and directory only'
    );
    assert.equal(
      (
        await fetch(`${base}/api/usage/not-a-uuid`, {
          headers: { 'x-controlroom-secret': API_SECRET, 'x-grafana-context': '{"Login":"v"}' },
        })
      ).status,
      400
    );
  });
});
