import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServices, type RunningServices } from '../../cli/services.ts';
import { loadConfig } from '../../cli/config.ts';
import { createLogger } from '../../core/logger.ts';
import { createTestDatabase, freePort, type TestDatabase } from '../../testing/postgres.ts';
import { spawnControlroom } from '../../testing/processes.ts';
import { API_SECRET, asUser, call, EAST, FakeRegion, waitUntil, WEST } from '../../testing/failover.ts';

/**
 * kill -9 of the instance carrying out a cutover, between two steps: the cutover is stored in the
 * database, so the restarted instance takes the lease back and continues it from where it stopped, with
 * the write freeze in force for the switch, to the end (control/failover/README.md, "Lease and fencing").
 */

let db: TestDatabase;
let east: FakeRegion;
let west: FakeRegion;
let restarted: RunningServices | undefined;

interface Routing {
  active: string;
  write_frozen: boolean;
  regions: Array<{ name: string; weight: number }>;
}

before(async () => {
  db = await createTestDatabase();
  east = await FakeRegion.start();
  west = await FakeRegion.start();
});
after(async () => {
  await restarted?.stop();
  await east.close();
  await west.close();
  await db.drop();
});

test(
  'kill -9 in the middle of a cutover: the restarted instance resumes it and completes it once',
  { timeout: 300_000 },
  async () => {
    const env = {
      DATABASE_URL: db.url,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      CONTROLROOM_AUTH: 'shared-secret',
      CONTROLROOM_API_SECRET: API_SECRET,
      CONTROLROOM_INSTANCE_ID: 'cutover-restart',
      FAILOVER_REGIONS: JSON.stringify([east.spec(EAST, 'primary'), west.spec(WEST, 'secondary')]),
      FAILOVER_CHECK_INTERVAL_SECONDS: '1',
      FAILOVER_CHECK_TIMEOUT_MS: '5000',
      FAILOVER_LEASE_SECONDS: '2',
      // Long enough that the kill lands between the 10 % and the 50 % step, even on a loaded machine.
      FAILOVER_STEP_SECONDS: '20',
    };
    const port = await freePort();
    const child = spawnControlroom(['serve', '--no-migrate'], { ...env, PORT: String(port) });
    try {
      await waitUntil(
        async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok,
        120_000,
        'the child service'
      );
      const routing = async (base: string) => (await call(base, 'GET', '/api/regions/routing')).body as Routing;
      const weight = (r: Routing, name: string) => r.regions.find((x) => x.name === name)?.weight;
      await waitUntil(
        async () => (await routing(`http://127.0.0.1:${port}`)).active === EAST,
        60_000,
        'the lease and the first routing'
      );

      // Refused (409) until the child's health checks have seen the target healthy.
      const res = await waitUntil(
        async () => {
          const r = await call(`http://127.0.0.1:${port}`, 'POST', '/api/regions/failover', asUser('Admin', 'ana'), {
            target: WEST,
            reason: 'planned maintenance in us-east-1',
          });
          return r.status === 409 && /unhealthy/.test(r.body.error) ? null : r;
        },
        60_000,
        'the target region to be seen healthy'
      );
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const eventId = res.body.event.id as string;
      await waitUntil(
        async () => weight(await routing(`http://127.0.0.1:${port}`), WEST) === 10,
        60_000,
        'the first step (10 %)'
      );
      await child.kill();

      // Cut off between steps: the cutover is still stored, routing stays at the first step, no freeze yet.
      const control = (
        await db.pool.query(`SELECT cutover, write_frozen FROM controlroom.failover_control WHERE scope = 'live'`)
      ).rows[0];
      assert.equal(control.cutover?.to, WEST, 'the stored cutover was lost');
      assert.equal(control.write_frozen, false);
      const mid = (await db.pool.query(`SELECT outcome FROM controlroom.failover_events WHERE id = $1`, [eventId]))
        .rows[0];
      assert.equal(mid.outcome, 'in_progress');

      restarted = await startServices(
        db.url,
        loadConfig({ ...env, PORT: '0', FAILOVER_STEP_SECONDS: '1' }),
        createLogger('silent')
      );
      const base = `http://127.0.0.1:${restarted.port}`;
      const final = await waitUntil(
        async () => {
          const r = await routing(base);
          return r.active === WEST && !r.write_frozen ? r : null;
        },
        120_000,
        'the cutover to complete after the restart'
      );
      assert.deepEqual([weight(final, EAST), weight(final, WEST)], [0, 100]);
      const event = (
        await db.pool.query(`SELECT outcome, details FROM controlroom.failover_events WHERE id = $1`, [eventId])
      ).rows[0];
      assert.equal(event.outcome, 'completed');
      const timeline = (event.details.timeline as Array<{ what: string }>).map((t) => t.what);
      // Resumed, not started over and not doubled: one write freeze and one completion.
      assert.equal(timeline.filter((w) => w === 'write_frozen').length, 1, timeline.join());
      assert.equal(timeline.filter((w) => w === 'completed').length, 1, timeline.join());
      const after = (
        await db.pool.query(`SELECT cutover, write_frozen FROM controlroom.failover_control WHERE scope = 'live'`)
      ).rows[0];
      assert.deepEqual([after.cutover, after.write_frozen], [null, false]);
      const completions = await db.pool.query(
        `SELECT count(*)::int AS n FROM audit_log WHERE action = 'failover.completed' AND target = $1`,
        [`failover_events/${eventId}`]
      );
      assert.equal(completions.rows[0].n, 1);
    } finally {
      await child.kill();
    }
  }
);
