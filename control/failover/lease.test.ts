import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';
import { claimInstance, type InstanceLiveness } from '../../core/instance-liveness.ts';
import { FailoverEngine, STANDBY_LEASE_POLL_MS, type Probes } from './engine.ts';
import { probeHealth, readLag } from './health.ts';
import { failoverLeaseHandover } from './lease.ts';
import { requestFailover } from './requests.ts';
import { loadRouting } from './routes.ts';
import { failoverSettings, parseRegions, type FailoverSettings } from './settings.ts';
import { fenced, FencedError, loadControl, loadRegions, renewLease, setWeights, syncRegions } from './store.ts';
import { EAST, FAST, FakeRegion, silent, testConfig, waitUntil, WEST } from '../../testing/failover.ts';

let db: TestDatabase;
let east: FakeRegion;
let west: FakeRegion;
let base: FailoverSettings;
const engines: FailoverEngine[] = [];

/** An engine under its own holder id, with probes that count its own health checks. */
function engine(holder: string, overrides: Partial<FailoverSettings> = {}) {
  const calls = { health: 0 };
  const probes: Probes = {
    health: (url, timeout) => {
      calls.health += 1;
      return probeHealth(url, timeout);
    },
    lag: readLag,
  };
  const e = new FailoverEngine(db.pool, { ...base, holder, ...overrides }, silent, probes);
  engines.push(e);
  return { e, calls };
}
const control = () => loadControl(db.pool, 'live');
const weights = async () =>
  Object.fromEntries((await loadRegions(db.pool, 'live')).map((r) => [r.name, r.traffic_weight]));

before(async () => {
  db = await createTestDatabase();
  east = await FakeRegion.start();
  west = await FakeRegion.start();
  const config = testConfig(east, west, { FAILOVER_LEASE_SECONDS: '1' });
  base = failoverSettings(config, FAST);
  await syncRegions(db.pool, 'live', parseRegions(config.FAILOVER_REGIONS), silent);
});
after(async () => {
  await Promise.all(engines.map((e) => e.stop()));
  await Promise.all([east.close(), west.close()]);
  await db.drop();
});

describe('lease and fencing', () => {
  const a = () => engines[0]!;
  let aCalls: { health: number };
  let bCalls: { health: number };

  test('two instances on one database: only the lease holder checks and acts', async () => {
    const first = engine('instance-a');
    const second = engine('instance-b');
    aCalls = first.calls;
    bCalls = second.calls;
    await first.e.start();
    await second.e.start();
    assert.deepEqual([first.e.isLeader, second.e.isLeader], [true, false]);
    const c = await control();
    assert.deepEqual([c.lease_holder, c.epoch], ['instance-a', 1]);
    await waitUntil(async () => aCalls.health >= 6, 5_000, 'checks by the holder');
    assert.equal(bCalls.health, 0, 'the standby instance runs no checks');
    assert.equal(await second.e.runCheckRound(), false);
    // The standby keeps competing for the lease, and keeps losing it while the holder renews it.
    await new Promise((r) => setTimeout(r, 1_200));
    assert.deepEqual([first.e.isLeader, second.e.isLeader, (await control()).epoch], [true, false, 1]);
  });

  test('the holder pauses past its lease: the other takes over under epoch 2, and the stale one cannot act', async () => {
    const stale = a();
    const heldBefore = stale.lease!;
    await stale.stop({ release: false }); // a pause: no renewals, but it still believes it holds epoch 1
    assert.deepEqual(stale.lease, heldBefore);
    const b = engines[1]!;
    await waitUntil(async () => b.isLeader, 5_000, 'takeover by instance-b');
    const c = await control();
    assert.deepEqual([c.lease_holder, c.epoch, b.lease!.epoch], ['instance-b', 2, 2]);
    const takeover = await db.pool.query(
      `SELECT actor, payload FROM audit_log WHERE action = 'failover.lease_acquired' ORDER BY id`
    );
    assert.deepEqual(
      takeover.rows.map((r) => [r.payload.holder, r.payload.epoch, r.payload.previous_holder]),
      [
        ['instance-a', 1, null],
        ['instance-b', 2, 'instance-a'],
      ]
    );

    // Epoch 1 is fenced: its check round, a weight change and a renewal are all refused.
    const before = await weights();
    await assert.rejects(stale.runCheckRound(), FencedError);
    await assert.rejects(
      fenced(db.pool, heldBefore, (client) => setWeights(client, heldBefore, { [EAST]: 0, [WEST]: 100 }, WEST)),
      (e: Error) =>
        e instanceof FencedError && /acted under epoch 1 .* held by instance-b under epoch 2/.test(e.message)
    );
    assert.equal(await renewLease(db.pool, heldBefore, 1_000), false);
    assert.deepEqual(await weights(), before);
    const checks = aCalls.health;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(aCalls.health, checks, 'the paused instance does nothing');
    assert.ok(bCalls.health > 0, 'the new holder checks');
  });

  test('a graceful stop hands the lease over at once', async () => {
    const b = engines[1]!;
    const c = engine('instance-c');
    await c.e.start();
    assert.equal(c.e.isLeader, false);
    const held = await control();
    await b.stop();
    // b's lease had not expired yet, but it was given up: c takes it at its very next attempt.
    assert.ok(held.lease_expires_at!.getTime() > Date.now(), "b's lease was still running");
    await c.e.leaseTick();
    assert.equal(c.e.isLeader, true);
    assert.deepEqual([(await control()).lease_holder, (await control()).epoch], ['instance-c', 3]);
  });
});

describe('cutover across restarts', () => {
  test('a restarted instance resumes the cutover where it stopped, under a new epoch', async () => {
    const holder = engines[engines.length - 1]!; // instance-c
    const { event } = await requestFailover(
      db.pool,
      'live',
      [10, 50, 100],
      { target: WEST, reason: 'resume test' },
      { actor: 'grafana:ana' }
    );
    holder.wake();
    await waitUntil(async () => (await weights())[WEST] === 10, 3_000, 'first step');
    await holder.stop({ release: false }); // crash after step 1
    await new Promise((r) => setTimeout(r, 600));
    assert.deepEqual(
      await weights(),
      { [EAST]: 90, [WEST]: 10 },
      'nobody acts while the lease is held by the crashed instance'
    );
    assert.equal((await control()).cutover?.applied, 1);

    const restarted = engine('instance-c'); // same instance id: takes its own lease over at once
    await restarted.e.start();
    assert.deepEqual([restarted.e.isLeader, restarted.e.lease!.epoch], [true, 4]);
    await waitUntil(async () => (await loadRouting(db.pool, 'live')).active === WEST, 5_000, 'cutover completed');
    // The resume calls go out after the completing transaction (one per region, each recorded as it
    // succeeds): wait for the owed list to empty so the timeline below is the settled one.
    await waitUntil(async () => (await control()).jobs_resume.length === 0, 5_000, 'resume calls sent');
    const row = (
      await db.pool.query(`SELECT outcome, epoch, details FROM controlroom.failover_events WHERE id = $1`, [event.id])
    ).rows[0];
    assert.equal(row.outcome, 'completed');
    assert.deepEqual(
      row.details.timeline.map((t: { what: string; epoch?: number }) => [t.what, t.epoch ?? null]),
      [
        ['requested', null],
        ['step', 3],
        ['step', 4],
        ['jobs_paused', 4],
        ['pause_sent', 4],
        ['pause_sent', 4],
        ['jobs_drained', 4],
        ['write_frozen', 4],
        ['completed', 4],
        ['jobs_resumed', 4],
        ['resume_sent', 4],
        ['resume_sent', 4],
      ]
    );
    assert.equal(Number(row.epoch), 4);
  });

  test('a crash while writes are frozen: the freeze survives, and another instance completes the cutover after the lease expired', async () => {
    const holder = engines[engines.length - 1]!;
    const { event } = await requestFailover(
      db.pool,
      'live',
      [10, 50, 100],
      { target: EAST, steps: [100], reason: 'crash while frozen' },
      { actor: 'grafana:ana' }
    );
    holder.wake();
    await waitUntil(async () => (await control()).write_frozen, 3_000, 'writes frozen');
    await holder.stop({ release: false });
    const leaseOfCrashed = (await control()).lease_expires_at!;
    const other = engine('instance-d', { drainMinMs: 100 });
    await other.e.start();
    assert.equal(other.e.isLeader, false);
    assert.equal((await loadRouting(db.pool, 'live')).write_frozen, true, 'still frozen while nobody may act');
    await waitUntil(async () => (await loadRouting(db.pool, 'live')).active === EAST, 5_000, 'completed by instance-d');
    const routing = await loadRouting(db.pool, 'live');
    assert.deepEqual([routing.write_frozen, routing.epoch, other.e.lease!.epoch], [false, 5, 5]);
    const row = (
      await db.pool.query(`SELECT outcome, finished_at FROM controlroom.failover_events WHERE id = $1`, [event.id])
    ).rows[0];
    assert.equal(row.outcome, 'completed');
    assert.ok(
      row.finished_at.getTime() >= leaseOfCrashed.getTime(),
      "completed only after the crashed holder's lease expired"
    );
  });
});

describe('a dead holder is taken over within a liveness sweep, not at the end of its lease', () => {
  // A lease far longer than the test: any takeover seen here is the handover, not the expiry.
  const LONG_LEASE_MS = 60_000;
  const SWEEP_MS = 200;
  const scope = 'handover';
  const livenesses: InstanceLiveness[] = [];
  const scopeControl = () => loadControl(db.pool, scope);
  /** An instance as `controlroom serve` runs one: its liveness lock and sweep (with the lease handover), and its engine. */
  const instance = async (id: string) => {
    const liveness = await claimInstance({
      pool: db.pool,
      instanceId: id,
      logger: silent,
      sweepMs: SWEEP_MS,
      handovers: [failoverLeaseHandover],
    });
    livenesses.push(liveness);
    const { e } = engine(id, { scope, leaseMs: LONG_LEASE_MS });
    await e.start();
    return { id, liveness, e };
  };

  before(async () => {
    // The earlier tests' engines have no liveness lock: stopped, so no sweep here finds their leases.
    await Promise.all(engines.map((e) => e.stop()));
    await syncRegions(db.pool, scope, parseRegions(testConfig(east, west).FAILOVER_REGIONS), silent);
  });
  after(async () => {
    await Promise.all(livenesses.map((l) => l.stop()));
  });

  test('a paused holder (its session alive) keeps the lease; once its session ends the standby takes it under a new epoch', async () => {
    // A drill's lease (`<instance>/<scope>`, no liveness lock of its own) is never handed over.
    await syncRegions(db.pool, 'drill-handover', parseRegions(testConfig(east, west).FAILOVER_REGIONS), silent);
    const drill = engine('pair-a/drill-handover', { scope: 'drill-handover', leaseMs: LONG_LEASE_MS });
    await drill.e.start();
    const holder = await instance('pair-a');
    const standby = await instance('pair-b');
    assert.deepEqual([holder.e.isLeader, standby.e.isLeader], [true, false]);
    const held = holder.e.lease!;

    // Paused, not dead: no renewals, but its Postgres session (and so its liveness lock) lives on. The
    // standby's sweep must not hand the lease over, however many sweeps and lease attempts pass.
    await holder.e.stop({ release: false });
    await new Promise((r) => setTimeout(r, SWEEP_MS * 5 + STANDBY_LEASE_POLL_MS * 2));
    assert.equal(standby.e.isLeader, false, 'a paused holder is not taken over before its lease runs out');
    assert.deepEqual([(await scopeControl()).lease_holder, (await scopeControl()).epoch], ['pair-a', held.epoch]);

    // Dead: its session ends (as a kill -9's does). Its lease still had nearly a minute to run.
    const drillLease = await loadControl(db.pool, 'drill-handover');
    const diedAt = Date.now();
    await holder.liveness.stop();
    await waitUntil(async () => standby.e.isLeader, 10_000, 'the standby to take the lease over');
    const tookMs = Date.now() - diedAt;
    assert.ok(
      tookMs <= SWEEP_MS + STANDBY_LEASE_POLL_MS + 1_000,
      `taken over ${tookMs} ms after the holder died (sweep ${SWEEP_MS} ms, standby poll ${STANDBY_LEASE_POLL_MS} ms)`
    );
    const c = await scopeControl();
    assert.deepEqual([c.lease_holder, c.epoch, standby.e.lease!.epoch], ['pair-b', held.epoch + 1, held.epoch + 1]);
    const audits = await db.pool.query(
      `SELECT action, payload FROM audit_log WHERE target = $1 AND action LIKE 'failover.lease%' ORDER BY id`,
      [`failover_control/${scope}`]
    );
    assert.deepEqual(
      audits.rows.map((r) => [r.action, r.payload.holder, r.payload.epoch]),
      [
        ['failover.lease_acquired', 'pair-a', held.epoch],
        ['failover.lease_expired_holder_gone', 'pair-a', held.epoch],
        ['failover.lease_acquired', 'pair-b', held.epoch + 1],
      ]
    );

    // Fencing holds: the old holder, were it still running, can neither act nor renew under its epoch.
    await assert.rejects(
      fenced(db.pool, held, async () => undefined),
      (e: Error) => e instanceof FencedError && /held by pair-b under epoch/.test(e.message)
    );
    assert.equal(await renewLease(db.pool, held, LONG_LEASE_MS), false);
    const drillAfter = await loadControl(db.pool, 'drill-handover');
    assert.deepEqual(
      [drillAfter.lease_holder, drillAfter.epoch, drillAfter.lease_expires_at!.getTime() > Date.now()],
      ['pair-a/drill-handover', drillLease.epoch, true],
      "the drill's lease is left alone"
    );
    // The new holder renews as usual; no later sweep touches a lease whose holder is alive.
    await new Promise((r) => setTimeout(r, SWEEP_MS * 3));
    assert.equal(standby.e.isLeader, true);
    assert.ok((await scopeControl()).lease_expires_at!.getTime() > Date.now() + LONG_LEASE_MS / 2);
  });
});
