import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServices, type RunningServices } from '../../cli/services.ts';
import { loadConfig } from '../../cli/config.ts';
import { createLogger } from '../../core/logger.ts';
import { FakeSlack, type SlackCall } from '../../testing/fake-slack.ts';
import { createTestDatabase, freePort, type TestDatabase } from '../../testing/postgres.ts';
import { spawnControlroom } from '../../testing/processes.ts';
import { AM_TOKEN, amPayload, waitUntil } from '../../testing/receiver-harness.ts';

/**
 * kill -9 of the instance in the middle of an alert storm: notifications already acknowledged (200) are in
 * Postgres with their queue jobs, so the restarted instance releases the jobs its crashed workers held and
 * acts on every group once: no group lost, none paged twice, and the groups still to come fold into the
 * storm digest already open rather than a second one (README, "Alert receiver").
 */

const CHANNEL = '#p2-restart-storm';
const THRESHOLD = 3;
// Slow pacing, so the kill lands between two Slack calls rather than inside one.
const INTERVAL_MS = 1_000;

let db: TestDatabase;
let slack: FakeSlack;
let restarted: RunningServices | undefined;

before(async () => {
  db = await createTestDatabase();
  slack = await FakeSlack.start();
});
after(async () => {
  await restarted?.stop();
  await slack.close();
  await db.drop();
});

const isDigest = (c: SlackCall) => /Alert storm/.test(String(c.args.text ?? ''));
const roots = () =>
  slack.calls.filter(
    (c) => c.status === 200 && c.method === 'chat.postMessage' && !c.args.thread_ts && c.args.channel === CHANNEL
  );

test(
  'kill -9 in the middle of an alert storm: every group is acted on once after the restart, into the same digest',
  { timeout: 300_000 },
  async () => {
    const env = {
      DATABASE_URL: db.url,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      CONTROLROOM_INSTANCE_ID: 'storm-restart',
      ALERTMANAGER_WEBHOOK_TOKEN: AM_TOKEN,
      SLACK_BOT_TOKEN: 'xoxb-test-token',
      SLACK_API_URL: slack.apiUrl,
      SLACK_CHANNEL_P2: CHANNEL,
      SLACK_CHANNEL_INTERVAL_MS: String(INTERVAL_MS),
      ALERT_STORM_THRESHOLD: String(THRESHOLD),
      JOB_CONCURRENCY: '2',
    };
    const port = await freePort();
    const child = spawnControlroom(['serve', '--no-migrate'], { ...env, PORT: String(port) });
    const deliver = async (base: string, from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const res = await fetch(`${base}/webhooks/alertmanager`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${AM_TOKEN}` },
          body: JSON.stringify(
            amPayload(`{}:{alertname="StormRestart${i}"}`, [{ alertname: `StormRestart${i}`, severity: 'P2' }])
          ),
        });
        assert.equal(res.status, 200, await res.text());
      }
    };
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitUntil(async () => (await fetch(`${base}/healthz`).catch(() => null))?.ok, 120_000, 'the child service');
      await deliver(base, 0, 8);
      await waitUntil(async () => roots().some(isDigest), 120_000, 'the storm digest');
      // More of the storm arrives (acknowledged, so stored and queued), then the instance dies mid-way. On an
      // idle machine the workers fold eight groups into the open digest in milliseconds, so the test holds
      // them mid-step: a lock on slack_pages (the webhook never writes it; every group's page step does)
      // keeps their transactions waiting until the kill. Released after it, a statement of the dead
      // instance may still commit on its own: that is a crash between two steps, which the restart must handle.
      const gate = await db.pool.connect();
      try {
        await gate.query('BEGIN');
        await gate.query('LOCK TABLE controlroom.slack_pages IN SHARE ROW EXCLUSIVE MODE');
        await deliver(base, 8, 16);
        await waitUntil(
          async () => {
            const { rows } = await db.pool.query(
              `SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND relation = 'controlroom.slack_pages'::regclass`
            );
            return rows[0].n > 0;
          },
          30_000,
          'a worker waiting on its page step'
        );
        await child.kill();
        const pending = await db.pool.query(
          `SELECT count(*)::int AS n FROM controlroom.alert_events WHERE processed_at IS NULL`
        );
        assert.ok(pending.rows[0].n > 0, 'the storm was over before the kill: nothing left to resume');
      } finally {
        await gate.query('ROLLBACK').catch(() => undefined);
        gate.release();
      }

      restarted = await startServices(db.url, loadConfig({ ...env, PORT: '0' }), createLogger('silent'));
      await waitUntil(
        async () => {
          const {
            rows: [s],
          } = await db.pool.query(
            `SELECT (SELECT count(*) FROM controlroom.alert_events WHERE processed_at IS NULL)::int AS unprocessed,
                (SELECT count(*) FROM controlroom.slack_pages)::int AS pages`
          );
          return s.unprocessed === 0 && s.pages === 16;
        },
        120_000,
        'every group of the storm to be acted on after the restart'
      );

      // Each group once: a root of its own, or folded into the storm.
      const pages = await db.pool.query(`SELECT group_key, ts, storm_id FROM controlroom.slack_pages ORDER BY id`);
      for (const page of pages.rows)
        assert.ok(
          (page.ts === null) !== (page.storm_id === null),
          `group ${page.group_key} is both or neither: ${JSON.stringify(page)}`
        );
      const storms = await db.pool.query(`SELECT id, ts FROM controlroom.slack_storms WHERE channel = $1`, [CHANNEL]);
      assert.equal(storms.rows.length, 1, 'the restart opened a second storm');
      assert.ok(pages.rows.filter((p) => p.storm_id !== null).every((p) => p.storm_id === storms.rows[0].id));
      // Slack saw one digest and one root per paged group, none twice.
      const posted = roots();
      assert.equal(posted.filter(isDigest).length, 1, 'the digest was posted twice');
      const groupRoots = posted.filter((c) => !isDigest(c));
      assert.equal(
        groupRoots.length,
        pages.rows.filter((p) => p.ts !== null).length,
        'a group was paged twice or not recorded'
      );
      const titles = groupRoots.map((c) => String(c.args.text));
      assert.equal(new Set(titles).size, titles.length, `a root was posted twice: ${titles.join(' | ')}`);
      assert.ok(pages.rows.filter((p) => p.storm_id !== null).length >= 16 - groupRoots.length);
    } finally {
      await child.kill();
    }
  }
);
