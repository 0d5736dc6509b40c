import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { loadConfig } from './config.ts';
import { createLogger } from '../core/logger.ts';
import { createTestDatabase, type TestDatabase } from '../testing/postgres.ts';
import { parseMetrics } from '../testing/prom-text.ts';
import { startServices, type RunningServices } from './services.ts';

let db: TestDatabase;
let services: RunningServices;
let base: string;

before(async () => {
  db = await createTestDatabase();
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', EXPORTER_REFRESH_MS: '1000' });
  services = await startServices(db.url, config, createLogger('silent'));
  base = `http://127.0.0.1:${services.port}`;
});
after(async () => {
  await services.stop();
  await db.drop();
});

test('a new row shows on /metrics within 15 s without anyone forcing a refresh', async () => {
  await db.pool.query(`INSERT INTO api_requests (region, status_code, route) VALUES ('us-west-2', 503, '/v1/quotes')`);
  const started = Date.now();
  let value: number | undefined;
  while (Date.now() - started < 15_000) {
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    value = parseMetrics(await res.text()).get('tms_api_requests_total{code_class="5xx",region="us-west-2"}');
    if (value === 1) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(value, 1, 'row not reflected within 15 s');
});

test('/healthz reports the database', async () => {
  const res = await fetch(`${base}/healthz`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: 'ok', database: 'ok' });
});

test('the webhook inbox holds its own connection, opened at start-up before any webhook', async () => {
  const { rows } = await db.pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'controlroom-inbox'`
  );
  assert.equal(Number(rows[0]!.n), 1, 'ALERT_INBOX_BATCHES (1) connections');
});

test("an idle keep-alive connection outlives Node's 5 s default: the client closes it first (HTTP_KEEP_ALIVE_SECONDS)", async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = () =>
    new Promise<{ port: number; keepAlive: string | undefined }>((resolve, reject) => {
      const req = http.get(`${base}/healthz`, { agent }, (res) => {
        res.resume();
        res.on('end', () =>
          resolve({ port: req.socket!.localPort!, keepAlive: res.headers['keep-alive'] as string | undefined })
        );
      });
      req.on('error', reject);
    });
  try {
    const first = await get();
    assert.equal(first.keepAlive, 'timeout=310');
    await new Promise((r) => setTimeout(r, 6_000));
    const second = await get();
    assert.equal(second.port, first.port, 'the same connection was used again after 6 s idle');
  } finally {
    agent.destroy();
  }
});

test('unknown routes answer 404 with a JSON message', async () => {
  const res = await fetch(`${base}/api/nope`);
  assert.equal(res.status, 404);
  assert.deepEqual(await res.json(), { error: 'no route for GET /api/nope' });
});

test('bad configuration is refused with the variable named', () => {
  assert.throws(() => loadConfig({ PORT: 'eighty' }), /PORT/);
  assert.throws(() => loadConfig({ DATABASE_URL: 'not a url' }), /DATABASE_URL/);
});
