import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { loadConfig } from '../../cli/config.ts';
import { createExporterMetrics } from '../../exporter/metrics.ts';
import { parseMetrics } from '../../testing/prom-text.ts';
import { createTestDatabase, freePort, type TestDatabase } from '../../testing/postgres.ts';
import { RegionsCollector } from '../../exporter/collectors/regions.ts';
import { FailoverEngine } from './engine.ts';
import { nextHealth, parseLag, probeHealth } from './health.ts';
import { startFailover } from './index.ts';
import { DEFAULT_REGIONS, failoverSettings, parseRegions } from './settings.ts';
import { loadRegions, syncRegions } from './store.ts';
import { EAST, FakeRegion, silent, testConfig, waitUntil, WEST } from '../../testing/failover.ts';

const t = { unhealthyAfter: 3, healthyAfter: 2 };

test('hysteresis: the first check decides, then 3 failures in a row make it unhealthy and 2 successes healthy', () => {
  let s = nextHealth(
    { healthy: false, consecutive_failures: 0, consecutive_successes: 0, last_check_at: null },
    true,
    t
  );
  assert.deepEqual([s.healthy, s.changed], [true, true]);
  const seen: boolean[] = [];
  for (const ok of [false, false, true, false, false, false, true, false, true, true]) {
    s = nextHealth(s, ok, t);
    seen.push(s.healthy);
  }
  // one failure is forgiven by a success in between; the third failure in a row flips; then one success
  // is not enough after a relapse, two in a row are.
  assert.deepEqual(seen, [true, true, true, true, true, false, false, false, false, true]);
  assert.deepEqual([s.consecutive_failures, s.consecutive_successes], [0, 2]);
  const unknownFails = nextHealth(
    { healthy: true, consecutive_failures: 0, consecutive_successes: 0, last_check_at: null },
    false,
    t
  );
  assert.equal(unknownFails.healthy, false, 'a region never checked takes its first result');
});

test('replication lag: JSON {lag_seconds}, a JSON number or plain text', () => {
  assert.equal(parseLag('{"lag_seconds": 1.5}'), 1.5);
  assert.equal(parseLag('2.25\n'), 2.25);
  assert.equal(parseLag('"3"'), 3);
  assert.equal(parseLag('{"lag": 1}'), null);
  assert.equal(parseLag('-1'), null);
  assert.equal(parseLag('soon'), null);
});

test('FAILOVER_REGIONS is validated with a message naming the problem; unset gives the placeholders', () => {
  assert.deepEqual(
    parseRegions(undefined).map((r) => [r.name, r.role]),
    DEFAULT_REGIONS.map((r) => [r.name, r.role])
  );
  assert.throws(() => parseRegions('[{'), /FAILOVER_REGIONS is not valid JSON/);
  const one = JSON.stringify([{ name: 'a', role: 'primary', base_url: 'http://a', health_url: 'http://a/h' }]);
  assert.throws(() => parseRegions(one), /FAILOVER_REGIONS .*exactly two regions/);
  const bad = JSON.stringify([
    { name: 'a', role: 'primary', base_url: 'http://a', health_url: 'ftp://a/h' },
    { name: 'b', role: 'primary', base_url: 'http://b', health_url: 'http://b/h', extra: 1 },
  ]);
  assert.throws(
    () => parseRegions(bad),
    (e: Error) => {
      assert.match(e.message, /FAILOVER_REGIONS \[0\]\.health_url: must be an http/);
      assert.match(e.message, /\[1\]: Unrecognized key/);
      assert.match(e.message, /one region must be primary and the other secondary/);
      return true;
    }
  );
  const ok = parseRegions(
    JSON.stringify([
      {
        name: 'b',
        role: 'secondary',
        base_url: 'http://b',
        health_url: 'http://b/h',
        replication_lag_url: 'http://b/lag',
      },
      { name: 'a', role: 'primary', base_url: 'http://a', health_url: 'http://a/h' },
    ])
  );
  assert.deepEqual(
    ok.map((r) => r.name),
    ['a', 'b'],
    'primary first'
  );
});

test('a probe fails on a non-2xx, a refused connection or a timeout', async () => {
  const region = await FakeRegion.start();
  try {
    assert.equal((await probeHealth(`${region.url}/healthz`, 500)).ok, true);
    region.mode = 'fail';
    assert.deepEqual(await probeHealth(`${region.url}/healthz`, 500).then((p) => [p.ok, p.statusCode, p.error]), [
      false,
      503,
      'HTTP 503',
    ]);
    region.mode = 'hang';
    const hung = await probeHealth(`${region.url}/healthz`, 150);
    assert.deepEqual([hung.ok, hung.error], [false, 'timed out after 150 ms']);
    const refused = await probeHealth(`http://127.0.0.1:${await freePort()}/healthz`, 500);
    assert.equal(refused.ok, false);
    assert.match(refused.error ?? '', /ECONNREFUSED/);
  } finally {
    await region.close();
  }
});

describe('health checks and automatic failover against local regions', () => {
  let db: TestDatabase;
  let east: FakeRegion;
  let west: FakeRegion;
  let engine: FailoverEngine;
  const registry = new Registry();
  const metrics = createExporterMetrics(registry);
  let collector: RegionsCollector;
  const region = async (name: string) => (await loadRegions(db.pool, 'live')).find((r) => r.name === name)!;
  const scrape = async () => {
    await collector.refresh();
    return parseMetrics(await registry.metrics());
  };

  before(async () => {
    db = await createTestDatabase();
    east = await FakeRegion.start();
    west = await FakeRegion.start();
    const config = testConfig(east, west, {}, true);
    collector = new RegionsCollector({ pool: db.pool, metrics, settings: config });
    await syncRegions(db.pool, 'live', parseRegions(config.FAILOVER_REGIONS), silent);
    // Rounds are driven by hand here: the engine is not started, it only holds the lease.
    engine = new FailoverEngine(db.pool, failoverSettings(config, { leaseMs: 120_000 }), silent);
    await engine.leaseTick();
    assert.ok(engine.isLeader);
  });
  after(async () => {
    await engine.stop();
    await Promise.all([east.close(), west.close()]);
    await db.drop();
  });

  test('the primary starts active at 100%; 3 failures in a row make a region unhealthy, 2 successes healthy again', async () => {
    assert.deepEqual(
      [(await region(EAST)).active, (await region(EAST)).traffic_weight, (await region(WEST)).traffic_weight],
      [true, 100, 0]
    );
    await engine.runCheckRound();
    assert.equal((await region(WEST)).healthy, true);
    west.mode = 'fail';
    await engine.runCheckRound();
    await engine.runCheckRound();
    assert.deepEqual([(await region(WEST)).healthy, (await region(WEST)).consecutive_failures], [true, 2]);
    assert.equal((await scrape()).get(`tms_region_consecutive_failures{region="${WEST}"}`), 2);
    await engine.runCheckRound();
    const down = await region(WEST);
    assert.deepEqual([down.healthy, down.consecutive_failures, down.last_error], [false, 3, 'HTTP 503']);
    let m = await scrape();
    assert.equal(m.get(`tms_region_up{region="${WEST}"}`), 0);
    assert.equal(m.get(`tms_region_up{region="${EAST}"}`), 1);
    assert.equal(m.get(`tms_region_active{region="${EAST}"}`), 1);
    assert.equal(m.get(`tms_region_traffic_weight{region="${EAST}"}`), 100);
    assert.equal(m.get('tms_region_write_frozen'), 0);

    west.mode = 'ok';
    await engine.runCheckRound();
    assert.deepEqual([(await region(WEST)).healthy, (await region(WEST)).consecutive_successes], [false, 1]);
    await engine.runCheckRound();
    assert.equal((await region(WEST)).healthy, true);
    m = await scrape();
    assert.equal(m.get(`tms_region_up{region="${WEST}"}`), 1);
    assert.equal(m.get(`tms_region_consecutive_failures{region="${WEST}"}`), 0);

    const history = await db.pool.query(
      `SELECT ok, error FROM controlroom.region_checks WHERE region = $1 ORDER BY id`,
      [WEST]
    );
    assert.deepEqual(
      history.rows.map((r) => r.ok),
      [true, false, false, false, true, true]
    );
    const audited = await db.pool.query(
      `SELECT action, actor, payload->>'region' AS region FROM audit_log WHERE action LIKE 'region.%' AND payload->>'region' = $1 ORDER BY id`,
      [WEST]
    );
    assert.deepEqual(
      audited.rows.map((r) => r.action),
      ['region.healthy', 'region.unhealthy', 'region.healthy']
    );
    assert.ok(audited.rows.every((r) => r.actor === 'controlroom:failover'));
  });

  test('replication lag is read from the lag URL, as JSON or as a plain number, and published', async () => {
    west.lagBody = '{"lag_seconds": 1.5}';
    east.lagBody = '0.25';
    await engine.runCheckRound();
    assert.equal((await region(WEST)).replication_lag_seconds, 1.5);
    assert.equal((await region(EAST)).replication_lag_seconds, 0.25);
    const m = await scrape();
    assert.equal(m.get(`tms_region_replication_lag_seconds{region="${WEST}"}`), 1.5);
    west.lagBody = '{"lag_seconds": 0}';
    east.lagBody = '0';
  });

  test('no automatic failover while the other region is unhealthy too; it follows once the other recovers', async () => {
    east.mode = 'fail';
    west.mode = 'hang';
    for (let i = 0; i < 3; i++) await engine.runCheckRound();
    assert.deepEqual([(await region(EAST)).healthy, (await region(WEST)).healthy], [false, false]);
    assert.equal((await region(EAST)).active, true, 'both unhealthy: nothing moves');
    let m = await scrape();
    assert.equal(m.get(`tms_region_up{region="${EAST}"}`), 0);
    assert.equal(m.get(`tms_region_active{region="${EAST}"}`), 1);
    const none = await db.pool.query(`SELECT count(*)::int AS n FROM controlroom.failover_events`);
    assert.equal(none.rows[0].n, 0);

    west.mode = 'ok';
    await engine.runCheckRound();
    assert.equal((await region(EAST)).active, true, 'one success is not healthy yet');
    await engine.runCheckRound();
    const [e, w] = [await region(EAST), await region(WEST)];
    assert.deepEqual([e.active, e.traffic_weight, w.active, w.traffic_weight], [false, 0, true, 100]);
    const events = await db.pool.query(
      `SELECT kind, from_region, to_region, actor, outcome, reason FROM controlroom.failover_events`
    );
    assert.equal(events.rows.length, 1);
    assert.deepEqual(
      [
        events.rows[0].kind,
        events.rows[0].from_region,
        events.rows[0].to_region,
        events.rows[0].actor,
        events.rows[0].outcome,
      ],
      ['auto', EAST, WEST, 'controlroom:failover', 'completed']
    );
    assert.match(events.rows[0].reason, /us-east-1 failed 5 health checks in a row \(HTTP 503\); us-west-2 is healthy/);
    const audited = await db.pool.query(`SELECT actor, payload FROM audit_log WHERE action = 'failover.automatic'`);
    assert.deepEqual([audited.rows[0].actor, audited.rows[0].payload.to], ['controlroom:failover', WEST]);
    m = await scrape();
    assert.equal(m.get(`tms_region_active{region="${WEST}"}`), 1);
    assert.equal(m.get(`tms_region_traffic_weight{region="${WEST}"}`), 100);
    assert.equal(m.get(`tms_region_traffic_weight{region="${EAST}"}`), 0);
  });

  test('with automatic failover off, an unhealthy active region stays active', async () => {
    const manualOnly = new FailoverEngine(db.pool, { ...engine.settings, auto: false }, silent);
    manualOnly.lease = engine.lease; // same instance, same lease: only the policy differs
    east.mode = 'ok';
    for (let i = 0; i < 2; i++) await manualOnly.runCheckRound();
    west.mode = 'fail';
    for (let i = 0; i < 3; i++) await manualOnly.runCheckRound();
    assert.deepEqual(
      [(await region(WEST)).healthy, (await region(WEST)).active, (await region(EAST)).healthy],
      [false, true, true]
    );
    const events = await db.pool.query(`SELECT count(*)::int AS n FROM controlroom.failover_events`);
    assert.equal(events.rows[0].n, 1);
  });

  test('check history is pruned after the retention period', async () => {
    await db.pool.query(
      `UPDATE controlroom.region_checks SET at = now() - interval '25 hours' WHERE id IN (SELECT id FROM controlroom.region_checks ORDER BY id LIMIT 3)`
    );
    const pruning = new FailoverEngine(db.pool, engine.settings, silent);
    pruning.lease = engine.lease;
    await pruning.runCheckRound();
    const old = await db.pool.query(
      `SELECT count(*)::int AS n FROM controlroom.region_checks WHERE at < now() - interval '24 hours'`
    );
    assert.equal(old.rows[0].n, 0);
  });
});

test('the default placeholder regions fail their checks and nothing fails over (serve without FAILOVER_REGIONS, nothing listening on their ports)', async () => {
  // A `controlroom start` running on this machine serves these ports (its demo regions): say so, not "healthy".
  const answering = [];
  for (const region of DEFAULT_REGIONS)
    if ((await probeHealth(region.health_url, 500)).ok) answering.push(region.health_url);
  assert.deepEqual(answering, [], "something answers on the default regions' ports: is `controlroom start` running?");
  const db = await createTestDatabase();
  const service = await startFailover({
    pool: db.pool,
    config: loadConfig({ CONTROLROOM_INSTANCE_ID: 'demo' }),
    logger: silent,
    settings: { checkIntervalMs: 30, checkTimeoutMs: 200 },
  });
  try {
    // Event-driven, bounded: under load a round can take longer than its 30 ms interval.
    const regions = await waitUntil(
      async () => {
        const now = await loadRegions(db.pool, 'live');
        return now.every((r) => r.consecutive_failures >= 5) ? now : null;
      },
      10_000,
      'five failed checks of each placeholder region'
    );
    assert.deepEqual(
      regions.map((r) => [r.name, r.role, r.active, r.traffic_weight, r.healthy]),
      [
        ['us-east-1', 'primary', true, 100, false],
        ['us-west-2', 'secondary', false, 0, false],
      ]
    );
    assert.ok(
      regions.every((r) => r.consecutive_failures >= 5),
      'checked many times'
    );
    const events = await db.pool.query(`SELECT count(*)::int AS n FROM controlroom.failover_events`);
    assert.equal(events.rows[0].n, 0);
    // One transition each (the first check), not one audit entry per failed check.
    const audited = await db.pool.query(`SELECT count(*)::int AS n FROM audit_log WHERE action LIKE 'region.%'`);
    assert.equal(audited.rows[0].n, 2);
  } finally {
    await service.stop();
    await db.drop();
  }
});
