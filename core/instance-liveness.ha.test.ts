import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadConfig } from '../cli/config.ts';
import { startServices, type RunningServices } from '../cli/services.ts';
import { FakeSlack, type SlackCall } from '../testing/fake-slack.ts';
import { createTestDatabase, freePort, type TestDatabase } from '../testing/postgres.ts';
import { spawnControlroom } from '../testing/processes.ts';
import { AM_TOKEN, amPayload, waitUntil } from '../testing/receiver-harness.ts';
import { createPool } from './db.ts';
import { claimInstance, LIVENESS_SWEEP_MS } from './instance-liveness.ts';
import { createLogger } from './logger.ts';

/**
 * The pair's survivor takes over what a kill -9'd instance held, without that instance ever coming back:
 * its locked queue jobs within a liveness sweep (LIVENESS_SWEEP_MS) plus a queue poll, and the failover
 * lease, which the sweep hands over at once (control/failover/lease.ts). The bound asserted here for the
 * lease is its expiry (FAILOVER_LEASE_SECONDS, plus a third of it for the next lease tick), the worst
 * case; testing/ha.test.ts holds the handover to its own, tighter bound.
 */

const CHANNEL = '#p2-takeover';
const GROUPS = 6;
const LEASE_SECONDS = 2;

let db: TestDatabase;
let slack: FakeSlack;
let survivor: RunningServices | undefined;

before(async () => {
  db = await createTestDatabase();
  slack = await FakeSlack.start();
});
after(async () => {
  await survivor?.stop();
  await slack.close();
  await db.drop();
});

test('a second live instance with the same id is refused at start-up; the id is free again once it stops', async () => {
  const pool = createPool(db.url, { max: 3, statementTimeoutMs: 10_000, applicationName: 'liveness-test' });
  const logger = createLogger('silent');
  try {
    const first = await claimInstance({ pool, instanceId: 'twin', logger });
    await assert.rejects(
      claimInstance({ pool, instanceId: 'twin', logger, claimWaitMs: 500 }),
      /CONTROLROOM_INSTANCE_ID twin is in use by another running instance/
    );
    await first.stop();
    const again = await claimInstance({ pool, instanceId: 'twin', logger, claimWaitMs: 5_000 });
    await again.stop();
  } finally {
    await pool.end();
  }
});

test(
  'kill -9 of the instance holding queue jobs and the failover lease: the survivor finishes the jobs and takes the lease',
  { timeout: 300_000 },
  async () => {
    const env = {
      DATABASE_URL: db.url,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      EXPORTER_REFRESH_MS: '60000',
      ALERTMANAGER_WEBHOOK_TOKEN: AM_TOKEN,
      SLACK_BOT_TOKEN: 'xoxb-test-token',
      SLACK_API_URL: slack.apiUrl,
      SLACK_CHANNEL_P2: CHANNEL,
      SLACK_CHANNEL_INTERVAL_MS: '5',
      ALERT_STORM_THRESHOLD: String(GROUPS * 4),
      FAILOVER_LEASE_SECONDS: String(LEASE_SECONDS),
      JOB_CONCURRENCY: '2',
    };
    const port = await freePort();
    const dying = spawnControlroom(['serve', '--no-migrate'], {
      ...env,
      PORT: String(port),
      CONTROLROOM_INSTANCE_ID: 'dying',
    });
    const base = `http://127.0.0.1:${port}`;
    const gate = await db.pool.connect();
    try {
      await waitUntil(async () => (await fetch(`${base}/healthz`).catch(() => null))?.ok, 120_000, 'the child service');
      await waitUntil(
        async () =>
          (await db.pool.query(`SELECT 1 FROM controlroom.failover_control WHERE lease_holder = 'dying'`)).rowCount,
        60_000,
        'the child to hold the failover lease'
      );
      // The child's workers take two groups' jobs and wait inside them: every page step needs slack_pages,
      // which the test holds locked until after the kill (as restart.test.ts in alerting/receiver does).
      await gate.query('BEGIN');
      await gate.query('LOCK TABLE controlroom.slack_pages IN SHARE ROW EXCLUSIVE MODE');
      for (let i = 0; i < GROUPS; i++) {
        const res = await fetch(`${base}/webhooks/alertmanager`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${AM_TOKEN}` },
          body: JSON.stringify(
            amPayload(`{}:{alertname="Takeover${i}"}`, [{ alertname: `Takeover${i}`, severity: 'P2' }])
          ),
        });
        assert.equal(res.status, 200, await res.text());
      }
      await waitUntil(
        async () =>
          (
            await db.pool.query(
              `SELECT count(*)::int AS n FROM graphile_worker._private_jobs WHERE locked_by LIKE 'controlroom-dying-%'`
            )
          ).rows[0].n === 2,
        60_000,
        'the child to hold two jobs'
      );

      // The survivor joins the pair; it takes the groups nobody holds, never the dying instance's.
      survivor = await startServices(
        db.url,
        loadConfig({ ...env, PORT: '0', CONTROLROOM_INSTANCE_ID: 'survivor' }),
        createLogger('silent')
      );
      await dying.kill();
      const killedAt = Date.now();
      await gate.query('ROLLBACK');

      const released = await waitUntil(
        async () =>
          (
            await db.pool.query(
              `SELECT count(*)::int AS n FROM graphile_worker._private_jobs WHERE locked_by LIKE 'controlroom-dying-%'`
            )
          ).rows[0].n === 0 && Date.now(),
        30_000,
        "the dying instance's jobs to be released"
      );
      assert.ok(
        released - killedAt <= LIVENESS_SWEEP_MS + 3_000,
        `released ${released - killedAt} ms after the kill (sweep every ${LIVENESS_SWEEP_MS} ms)`
      );
      await waitUntil(
        async () => {
          const { rows } = await db.pool.query(
            `SELECT (SELECT count(*) FROM controlroom.alert_events WHERE processed_at IS NULL)::int AS pending,
                    (SELECT count(*) FROM controlroom.slack_pages WHERE ts IS NOT NULL)::int AS paged`
          );
          return rows[0].pending === 0 && rows[0].paged === GROUPS;
        },
        60_000,
        'every group to be paged by the survivor'
      );
      const roots = slack
        .ok('chat.postMessage')
        .filter((c: SlackCall) => c.args.channel === CHANNEL && !c.args.thread_ts);
      const perGroup = new Map<string, number>();
      for (const c of roots) {
        const name = /Takeover\d+/.exec(String(c.args.text))?.[0] ?? String(c.args.text);
        perGroup.set(name, (perGroup.get(name) ?? 0) + 1);
      }
      assert.deepEqual(
        [...perGroup.entries()].sort(),
        Array.from({ length: GROUPS }, (_, i) => [`Takeover${i}`, 1]).sort(),
        'each group paged once'
      );

      const leaseTaken = await waitUntil(
        async () =>
          (await db.pool.query(`SELECT 1 FROM controlroom.failover_control WHERE lease_holder = 'survivor'`))
            .rowCount && Date.now(),
        30_000,
        'the survivor to take the failover lease'
      );
      const bound = (LEASE_SECONDS * 1000 * 4) / 3 + 2_000;
      assert.ok(
        leaseTaken - killedAt <= bound,
        `lease taken ${leaseTaken - killedAt} ms after the kill (bound ${bound} ms)`
      );
    } finally {
      await gate.query('ROLLBACK').catch(() => undefined);
      gate.release();
      await dying.kill();
    }
  }
);
