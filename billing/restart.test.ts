import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { waitUntil } from '../testing/receiver-harness.ts';
import { startServices, type RunningServices } from '../cli/services.ts';
import { loadConfig } from '../cli/config.ts';
import { createLogger } from '../core/logger.ts';
import { insertCompany } from '../testing/companies.ts';
import { createTestDatabase, freePort, type TestDatabase } from '../testing/postgres.ts';
import { spawnControlroom } from '../testing/processes.ts';

/**
 * kill -9 of the instance in the middle of a Stripe meter batch (README, "Metering"): the rows Stripe
 * acknowledged are marked sent and never sent again; the rows the dead sender had claimed are sent by the
 * next instance once their lease runs out; the one request that was in flight at the kill is sent again
 * with the same identifier and Idempotency-Key, so Stripe counts it once.
 */

const COMPANIES = 8;
const ANSWERED_BEFORE_KILL = 3;

interface MeterCall {
  identifier: string;
  idempotencyKey: string | undefined;
  answered: boolean;
}

let db: TestDatabase;
let stripe: http.Server;
const calls: MeterCall[] = [];
let answerAll = false;
const held: http.ServerResponse[] = [];
let restarted: RunningServices | undefined;

before(async () => {
  db = await createTestDatabase();
  // Stripe's meter event endpoint that answers the first few events and then stops answering: the
  // sender is caught with a request in flight and the rest of its batch claimed.
  stripe = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      if (req.url !== '/v1/billing/meter_events') {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { type: 'invalid_request_error', message: 'no such route' } }));
        return;
      }
      const identifier = new URLSearchParams(body).get('identifier') ?? '';
      const answered = answerAll || calls.length < ANSWERED_BEFORE_KILL;
      calls.push({ identifier, idempotencyKey: req.headers['idempotency-key'] as string | undefined, answered });
      if (!answered) {
        held.push(res);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'billing.meter_event', identifier, created: 1 }));
    });
  });
  await new Promise<void>((resolve) => stripe.listen(0, '127.0.0.1', resolve));
});
after(async () => {
  await restarted?.stop();
  for (const res of held) res.destroy();
  stripe.closeAllConnections();
  stripe.close();
  await db.drop();
});

test(
  'kill -9 in the middle of a Stripe meter batch: every overage range is billed once after the restart',
  { timeout: 300_000 },
  async () => {
    const env = {
      DATABASE_URL: db.url,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      CONTROLROOM_INSTANCE_ID: 'meter-restart',
      STRIPE_SECRET_KEY: 'sk_test_fake',
      STRIPE_API_HOST: '127.0.0.1',
      STRIPE_API_PORT: String((stripe.address() as { port: number }).port),
      STRIPE_API_PROTOCOL: 'http',
      STRIPE_MAX_NETWORK_RETRIES: '0',
      STRIPE_TIMEOUT_MS: '120000',
      BILLING_TICK_SECONDS: '1',
      BILLING_METER_CONCURRENCY: '1',
    };
    // pro rates: 10000 included (soft limit) -> 250 overage units each, one outbox row per company.
    for (let i = 0; i < COMPANIES; i++) {
      const id = await insertCompany(db.pool, `Metered Freight ${i}`, 'pro', { stripeCustomerId: `cus_restart_${i}` });
      await db.pool.query(`INSERT INTO usage_events (company_id, feature_key, qty) VALUES ($1, 'rates', 10250)`, [id]);
    }
    const port = await freePort();
    const child = spawnControlroom(['serve', '--no-migrate'], { ...env, PORT: String(port) });
    try {
      await waitUntil(
        async () => calls.length > ANSWERED_BEFORE_KILL,
        120_000,
        'the sender to be stuck on an unanswered event'
      );
      await child.kill();
      const atKill = await db.pool.query(
        `SELECT count(*) FILTER (WHERE sent_at IS NOT NULL)::int AS sent, count(*)::int AS total FROM controlroom.billing_meter_events`
      );
      assert.deepEqual(atKill.rows[0], { sent: ANSWERED_BEFORE_KILL, total: COMPANIES });

      // The dead sender's claim is a lease (five minutes); moving it to now stands in for the wait.
      await db.pool.query(`UPDATE controlroom.billing_meter_events SET next_attempt_at = now() WHERE sent_at IS NULL`);
      answerAll = true;
      restarted = await startServices(db.url, loadConfig({ ...env, PORT: '0' }), createLogger('silent'));
      await waitUntil(
        async () => {
          const r = await db.pool.query(
            `SELECT count(*)::int AS n FROM controlroom.billing_meter_events WHERE sent_at IS NULL`
          );
          return r.rows[0].n === 0;
        },
        120_000,
        'every meter event to be sent after the restart'
      );

      const rows = await db.pool.query<{ identifier: string }>(
        `SELECT identifier FROM controlroom.billing_meter_events`
      );
      const answered = calls.filter((c) => c.answered);
      // Each identifier answered exactly once: nothing Stripe acknowledged was sent again.
      assert.deepEqual(answered.map((c) => c.identifier).sort(), rows.rows.map((r) => r.identifier).sort());
      // The one in flight at the kill went again under the same identifier and Idempotency-Key.
      const inFlight = calls.filter((c) => !c.answered);
      assert.equal(inFlight.length, 1);
      const resent = answered.filter((c) => c.identifier === inFlight[0]!.identifier);
      assert.deepEqual(
        resent.map((c) => c.idempotencyKey),
        [inFlight[0]!.idempotencyKey]
      );
      assert.equal(inFlight[0]!.idempotencyKey, `meter:${inFlight[0]!.identifier}`);
    } finally {
      await child.kill();
    }
  }
);
