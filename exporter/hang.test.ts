import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createPool, withTransaction, type Pool } from '../core/db.ts';
import { createTestDatabase, type TestDatabase } from '../testing/postgres.ts';
import { startPausableProxy, type PausableProxy } from '../testing/tcp-proxy.ts';
import { testExporter } from '../testing/exporter.ts';

/**
 * A database that hangs (accepts connections, answers nothing) must look like an outage, not like a
 * slow scrape that never ends: the real test Postgres behind a TCP proxy that stops forwarding.
 */
/** Short enough for a test, long enough that a healthy query on a loaded 2-core machine never hits them. */
const QUERY_TIMEOUT_MS = 3_000;
const CONNECT_TIMEOUT_MS = 3_000;
/** Generous bound for a refresh while hung: query and rollback timeouts, collectors waiting for a pool slot. */
const HUNG_REFRESH_BOUND_MS = 30_000;

let db: TestDatabase;
let proxy: PausableProxy;
let pool: Pool;
let proxiedUrl: string;

before(async () => {
  db = await createTestDatabase();
  const target = new URL(db.url);
  proxy = await startPausableProxy(target.hostname, Number(target.port));
  target.port = String(proxy.port);
  proxiedUrl = target.toString();
  pool = createPool(proxiedUrl, {
    max: 3,
    statementTimeoutMs: 20_000,
    queryTimeoutMs: QUERY_TIMEOUT_MS,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    applicationName: 'hang-test',
  });
});
after(async () => {
  proxy.resume();
  await pool.end();
  await proxy.close();
  await db.drop();
});

const within = async <T>(promise: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} still pending after ${ms} ms: the hang was not noticed`)), ms);
  });
  try {
    return await Promise.race([promise, bound]);
  } finally {
    clearTimeout(timer);
  }
};

describe('a hanging database', () => {
  test('collector refreshes fail within the timeouts and count as collect errors; the pool recovers afterwards', async () => {
    const exporter = testExporter(pool);
    await exporter.runner.refreshAll();
    const errors = async () => {
      const m = await exporter.scrape();
      return [...m]
        .filter(([k]) => k.startsWith('controlroom_exporter_collect_errors_total{'))
        .reduce((sum, [, v]) => sum + v, 0);
    };
    assert.equal(await errors(), 0, 'healthy before the hang');
    const collectors = [...(await exporter.scrape()).keys()].filter((k) =>
      k.startsWith('controlroom_exporter_collect_errors_total{')
    ).length;
    assert.ok(collectors >= 4, `${collectors} collectors`);

    proxy.pause();
    const started = Date.now();
    await within(exporter.runner.refreshAll(), HUNG_REFRESH_BOUND_MS, 'refresh against the hung database');
    assert.equal(await errors(), collectors, 'every collector counted one error');
    // Idle connections are stuck behind the hang (query timeout); new ones cannot be made (connect timeout).
    await assert.rejects(within(pool.query('SELECT 1'), HUNG_REFRESH_BOUND_MS, 'a query'), /timeout/i);
    const fresh = createPool(proxiedUrl, {
      max: 1,
      statementTimeoutMs: 20_000,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      applicationName: 'hang-test-fresh',
    });
    await assert.rejects(within(fresh.query('SELECT 1'), HUNG_REFRESH_BOUND_MS, 'a new connection'), /timeout/i);
    await fresh.end();
    assert.ok(Date.now() - started < HUNG_REFRESH_BOUND_MS * 2);

    proxy.resume();
    await exporter.runner.refreshAll();
    assert.equal(await errors(), collectors, 'no new errors once the database answers');
    assert.equal((await pool.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one, 1);
    const lastSuccess = [...(await exporter.scrape())].filter(([k]) =>
      k.startsWith('controlroom_exporter_last_success_timestamp_seconds{')
    );
    assert.ok(
      lastSuccess.every(([, v]) => v * 1000 >= started),
      'every collector succeeded after the database came back'
    );
  });

  test('a transaction whose query times out gives its connection up; the next transaction works', async () => {
    let used: unknown;
    await pool.query('SELECT 1'); // a healthy idle connection, so the transaction gets one before the hang
    pool.once('acquire', (client) => (used = client));
    proxy.pause();
    await assert.rejects(
      within(
        withTransaction(pool, 'READ COMMITTED', (client) => client.query('SELECT 1')),
        HUNG_REFRESH_BOUND_MS,
        'the transaction'
      ),
      /timeout/i
    );
    proxy.resume();
    // Not returned to the pool with a query outstanding, where it would answer the next transaction with
    // stale results: the pool hands out its most recently released idle connection first, and it is not that one.
    assert.ok(used);
    const next = await pool.connect();
    try {
      assert.notEqual(next, used, 'the timed-out connection was discarded');
    } finally {
      next.release();
    }
    const result = await withTransaction(pool, 'READ COMMITTED', (client) =>
      client.query<{ n: number }>('SELECT 2 AS n')
    );
    assert.equal(result.rows[0]!.n, 2);
  });
});
