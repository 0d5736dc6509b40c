import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';
import { FailoverEngine, type Probes } from './engine.ts';
import { probeHealth, readLag } from './health.ts';
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
