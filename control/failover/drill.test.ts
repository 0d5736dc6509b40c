import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../cli/config.ts';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';
import { runDrill } from './drill.ts';
import { runGameDay } from './gameday.ts';
import { parseRegions } from './settings.ts';
import { loadRegions, syncRegions } from './store.ts';
import { silent } from '../../testing/failover.ts';

let db: TestDatabase;
const config = loadConfig({ CONTROLROOM_INSTANCE_ID: 'drill-test' });

before(async () => {
  db = await createTestDatabase();
  await syncRegions(db.pool, 'live', parseRegions(undefined), silent);
});
after(async () => {
  await db.drop();
});

test('a planned failover drill records RTO and RPO as evidence, without touching live routing', async () => {
  const started = Date.now();
  const result = await runDrill({ pool: db.pool, config, logger: silent });
  const took = Date.now() - started;
  console.log(`drill: ${JSON.stringify({ took_ms: took, ...result, details: undefined })}`);
  assert.ok(took < 15_000, `the drill took ${took} ms`);
  assert.equal(result.outcome, 'passed');
  assert.deepEqual(result.steps, [10, 50, 100]);
  assert.ok(
    result.rto_seconds! > 0.8 && result.rto_seconds! < 5,
    `RTO ${result.rto_seconds}: two 400 ms steps, then the drain`
  );
  assert.equal(result.rpo_seconds, 0, 'writes are frozen until the replica caught up: nothing acknowledged is lost');
  assert.equal(result.writes_lost, 0);
  assert.ok(result.writes_acknowledged > 50, `${result.writes_acknowledged} writes`);
  assert.ok(result.write_freeze_seconds! >= 0.15 && result.write_freeze_seconds! < 2);
  assert.ok(result.write_unavailable_seconds! <= result.rto_seconds!);
  assert.ok((result.details.writes_on_new_primary as number) > 0, 'the new primary took writes');

  const row = (await db.pool.query(`SELECT * FROM controlroom.failover_drills WHERE id = $1`, [result.id])).rows[0];
  assert.deepEqual(
    [row.outcome, row.rto_seconds, row.rpo_seconds, row.writes_acknowledged, row.writes_lost, String(row.event_id)],
    ['passed', result.rto_seconds, 0, result.writes_acknowledged, 0, result.event_id]
  );
  assert.ok(row.finished_at instanceof Date);
  const event = (
    await db.pool.query(`SELECT kind, outcome, steps, scope, actor FROM controlroom.failover_events WHERE id = $1`, [
      result.event_id,
    ])
  ).rows[0];
  assert.deepEqual(
    [event.kind, event.outcome, event.steps, event.scope, event.actor],
    ['drill', 'completed', [10, 50, 100], result.scope, 'controlroom:drill']
  );
  const audited = (await db.pool.query(`SELECT actor, payload FROM audit_log WHERE action = 'failover.drill'`)).rows;
  assert.equal(audited.length, 1);
  assert.deepEqual(
    [audited[0].actor, audited[0].payload.rto_seconds, audited[0].payload.writes_lost],
    ['controlroom:drill', result.rto_seconds, 0]
  );
  // The same path as the API: requested, the steps, the freeze and the completion are all audited.
  const path = (
    await db.pool.query(`SELECT action FROM audit_log WHERE target = $1 ORDER BY id`, [
      `failover_events/${result.event_id}`,
    ])
  ).rows;
  assert.deepEqual(path.map((r) => r.action).slice(0, 10), [
    'failover.requested',
    'failover.step_applied',
    'failover.step_applied',
    'failover.jobs_paused',
    'failover.jobs_pause_sent',
    'failover.jobs_pause_sent',
    'failover.jobs_drained',
    'failover.write_frozen',
    'failover.completed',
    'failover.jobs_resumed',
  ]);
  // Judged against the default targets (15 min, 5 min), recorded with the drill.
  assert.deepEqual([row.rto_target_seconds, row.rpo_target_seconds, row.rto_met, row.rpo_met], [900, 300, true, true]);
  assert.deepEqual([result.rto_met, result.rpo_met, result.rto_target_seconds], [true, true, 900]);
  assert.deepEqual(row.details.jobs.depths, { 'drill-primary': 0, 'drill-secondary': 0 });

  const live = await loadRegions(db.pool, 'live');
  assert.deepEqual(
    live.map((r) => [r.name, r.active, r.traffic_weight]),
    [
      ['us-east-1', true, 100],
      ['us-west-2', false, 0],
    ]
  );
  const leftovers = await db.pool.query(`SELECT count(*)::int AS n FROM controlroom.regions WHERE scope <> 'live'`);
  assert.equal(leftovers.rows[0].n, 0, 'the drill regions are removed');
});

test('skipping the replication catch-up is measured as lost writes (RPO > 0)', async () => {
  const result = await runDrill({
    pool: db.pool,
    config,
    logger: silent,
    options: { waitForReplication: false, replicationLagMs: 1_000, steps: [100], warmupMs: 1_500, settleMs: 100 },
  });
  console.log(`unsafe drill: ${JSON.stringify({ ...result, details: undefined })}`);
  assert.equal(result.outcome, 'failed');
  assert.ok(result.writes_lost > 0);
  // The writes lost are those of the last replication lag (1 s) before the switch. The client writes
  // every 5 ms when it gets the CPU; on a loaded machine it writes less often, so the newest kept and the
  // newest lost write can be closer than the lag (0.22 s seen at load average 9): the bound is "some, at
  // most the lag and a margin", not the lag itself.
  assert.ok(result.rpo_seconds! > 0 && result.rpo_seconds! < 1.5, `RPO ${result.rpo_seconds}`);
  const row = (
    await db.pool.query(`SELECT outcome, writes_lost, details FROM controlroom.failover_drills WHERE id = $1`, [
      result.id,
    ])
  ).rows[0];
  assert.deepEqual([row.outcome, row.writes_lost], ['failed', result.writes_lost]);
  assert.match(row.details.failure, /acknowledged writes missing on the new primary/);
});

test('a drill over its RTO target fails, saying by how much', async () => {
  const strict = loadConfig({ CONTROLROOM_INSTANCE_ID: 'drill-test', FAILOVER_RTO_TARGET_SECONDS: '0.3' });
  const result = await runDrill({
    pool: db.pool,
    config: strict,
    logger: silent,
    options: { warmupMs: 200, settleMs: 100 },
  });
  assert.equal(result.outcome, 'failed');
  assert.deepEqual(
    [result.rto_met, result.rpo_met, result.rto_target_seconds, result.writes_lost],
    [false, true, 0.3, 0]
  );
  assert.match(String(result.details.failure), /^RTO \d+\.\d{3} s is over the 0\.3 s target$/);
  const row = (
    await db.pool.query(`SELECT outcome, rto_met, rto_target_seconds FROM controlroom.failover_drills WHERE id = $1`, [
      result.id,
    ])
  ).rows[0];
  assert.deepEqual([row.outcome, row.rto_met, row.rto_target_seconds], ['failed', false, 0.3]);
});

test('game day primary-db-loss: automatic failover within the targets, recorded like a drill', async () => {
  const result = await runGameDay({ pool: db.pool, config, logger: silent, scenario: 'primary-db-loss' });
  console.log(`game day: ${JSON.stringify({ ...result, details: undefined })}`);
  assert.equal(result.outcome, 'passed', JSON.stringify(result.expectations));
  assert.ok(
    result.rto_seconds! > 0.2 && result.rto_seconds! < 5,
    `RTO ${result.rto_seconds}: three failed checks 100 ms apart, then the move`
  );
  assert.ok(
    result.rpo_seconds! >= 0 && result.rpo_seconds! < 1,
    `RPO ${result.rpo_seconds}: about the 150 ms replication lag`
  );
  const row = (
    await db.pool.query(
      `SELECT kind, scenario, outcome, rto_met, rpo_met, event_id FROM controlroom.failover_drills WHERE id = $1`,
      [result.id]
    )
  ).rows[0];
  assert.deepEqual(
    [row.kind, row.scenario, row.outcome, row.rto_met, row.rpo_met],
    ['gameday', 'primary-db-loss', 'passed', true, true]
  );
  const event = (
    await db.pool.query(`SELECT kind, details FROM controlroom.failover_events WHERE id = $1`, [row.event_id])
  ).rows[0];
  assert.equal(event.kind, 'auto');
  assert.equal(event.details.objectives.rto_met, true);
  const audited = (
    await db.pool.query(`SELECT payload FROM audit_log WHERE action = 'failover.gameday' AND target = $1`, [
      `failover_drills/${result.id}`,
    ])
  ).rows;
  assert.deepEqual(
    audited.map((a) => a.payload.outcome),
    ['passed']
  );
});

test('game day primary-db-loss fails when the RPO target is tighter than the replication lag', async () => {
  const strict = loadConfig({ CONTROLROOM_INSTANCE_ID: 'drill-test', FAILOVER_RPO_TARGET_SECONDS: '0.05' });
  const result = await runGameDay({
    pool: db.pool,
    config: strict,
    logger: silent,
    scenario: 'primary-db-loss',
    options: { replicationLagMs: 400 },
  });
  assert.equal(result.outcome, 'failed');
  assert.equal(result.objectives.rpo_met, false);
  assert.ok(result.writes_lost > 0);
  assert.match(String(result.details.failure), /RPO within 0\.05 s: RPO \d/);
});

test('game day upstream-degraded: no failover, writes keep flowing, the slowdown is measured', async () => {
  const result = await runGameDay({
    pool: db.pool,
    config,
    logger: silent,
    scenario: 'upstream-degraded',
    options: { observeMs: 1_500 },
  });
  assert.equal(result.outcome, 'passed', JSON.stringify(result.expectations));
  assert.deepEqual(
    result.expectations.map((e) => e.met),
    [true, true, true, true]
  );
  assert.equal(result.rto_seconds, null);
  assert.equal(result.writes_lost, 0);
  const live = await loadRegions(db.pool, 'live');
  assert.deepEqual(
    live.map((r) => [r.name, r.active, r.traffic_weight]),
    [
      ['us-east-1', true, 100],
      ['us-west-2', false, 0],
    ]
  );
  const leftovers = await db.pool.query(`SELECT count(*)::int AS n FROM controlroom.regions WHERE scope <> 'live'`);
  assert.equal(leftovers.rows[0].n, 0);
});
