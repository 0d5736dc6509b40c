import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LogLevel, WebClient } from '@slack/web-api';
import { createLogger } from '../../core/logger.ts';
import { channelId, FakeSlack } from '../../testing/fake-slack.ts';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';
import { announcementText, FreezeAnnouncer } from './freeze-announcer.ts';
import { ChannelPacer } from './pacer.ts';

const CHANNEL = '#controlroom-alerts';
let db: TestDatabase;
let slack: FakeSlack;
let announcer: FreezeAnnouncer;

before(async () => {
  db = await createTestDatabase();
  slack = await FakeSlack.start();
  const client = new WebClient('xoxb-test', {
    slackApiUrl: slack.apiUrl,
    logLevel: LogLevel.ERROR,
    retryConfig: { retries: 0 },
  });
  announcer = new FreezeAnnouncer(db.pool, client, new ChannelPacer(5), CHANNEL, createLogger('silent'));
});
after(async () => {
  await slack.close();
  await db.drop();
});

const change = async (frozen: boolean, cause: string, reason: string) =>
  (
    await db.pool.query<{ id: string }>(
      `INSERT INTO controlroom.freeze_history (frozen, cause, reason) VALUES ($1, $2, $3) RETURNING id::text AS id`,
      [frozen, cause, reason]
    )
  ).rows[0]!.id;
const posts = () =>
  slack
    .ok('chat.postMessage')
    .map((c) => ({ text: String(c.args.text), thread: (c.args.thread_ts as string | undefined) ?? null }));

test('a freeze episode is one thread: the start is the root, every later change and the end reply in it, each once', async () => {
  const start = await change(
    true,
    'error_budget',
    'More than half of the error budget is spent: ErrorBudgetHalfSpent (availability)'
  );
  const manual = await change(true, 'manual', 'Manual freeze by grafana:ed: Black Friday');
  const override = await change(false, 'override', 'Override by grafana:cto until 2026-11-23T13:00:00Z: ship the fix');
  const end = await change(false, 'none', 'No release freeze');
  for (const id of [start, manual, override, end]) await announcer.announce(id);
  // Retries of every job (after a crash, or a failed later step) post nothing again.
  for (const id of [start, manual, override, end]) await announcer.announce(id);
  const sent = posts();
  assert.equal(sent.length, 4);
  const rootTs = slack.ok('chat.postMessage')[0]!;
  const announced = await db.pool.query(
    `SELECT history_id::text, episode_id::text, ts, thread_ts, channel_id FROM controlroom.freeze_announcements ORDER BY history_id`
  );
  const root = announced.rows[0]!;
  assert.deepEqual(sent, [
    {
      text: ':no_entry: Releases frozen (error_budget): More than half of the error budget is spent: ErrorBudgetHalfSpent (availability)',
      thread: null,
    },
    { text: 'Releases frozen by hand now: Manual freeze by grafana:ed: Black Friday', thread: root.ts },
    {
      text: ':unlock: Release freeze overridden, releases may ship: Override by grafana:cto until 2026-11-23T13:00:00Z: ship the fix',
      thread: root.ts,
    },
    { text: ':white_check_mark: Release freeze ended: releases may ship again.', thread: root.ts },
  ]);
  assert.equal(rootTs.args.channel, CHANNEL);
  assert.deepEqual(
    announced.rows.map((r) => [r.history_id, r.episode_id, r.channel_id]),
    [
      [start, start, channelId(CHANNEL)],
      [manual, start, channelId(CHANNEL)],
      [override, start, channelId(CHANNEL)],
      [end, start, channelId(CHANNEL)],
    ]
  );
  const audited = await db.pool.query(
    `SELECT count(*)::int AS n FROM audit_log WHERE action = 'slack.freeze_announced'`
  );
  assert.equal(audited.rows[0].n, 4);
});

test('the next freeze opens a new thread; a reply whose root is not posted yet posts the root first', async () => {
  slack.calls.length = 0;
  const start = await change(
    true,
    'release_gate',
    'Release gate: agent_success in the last hour is below 98% (ReleaseGateAgentSuccess)'
  );
  const worse = await change(
    true,
    'active_region_down',
    'Active region eu is down: no deploys while the TMS runs degraded (ActiveRegionDown)'
  );
  await announcer.announce(worse); // its job ran first (the root's is still retrying)
  await announcer.announce(start);
  const sent = posts();
  assert.equal(sent.length, 2);
  assert.deepEqual(sent[0], {
    text: ':no_entry: Releases frozen (release_gate): Release gate: agent_success in the last hour is below 98% (ReleaseGateAgentSuccess)',
    thread: null,
  });
  const rootTs = (await db.pool.query(`SELECT ts FROM controlroom.freeze_announcements WHERE history_id = $1`, [start]))
    .rows[0].ts;
  assert.deepEqual(sent[1], {
    text: 'Releases frozen (active_region_down) now: Active region eu is down: no deploys while the TMS runs degraded (ActiveRegionDown)',
    thread: rootTs,
  });
});

test('a Slack failure fails the job without recording a post; the retry posts once', async () => {
  slack.calls.length = 0;
  const end = await change(false, 'none', 'No release freeze');
  slack.failNext(1, 500, { method: 'chat.postMessage' });
  await assert.rejects(announcer.announce(end));
  const pending = await db.pool.query(`SELECT ts FROM controlroom.freeze_announcements WHERE history_id = $1`, [end]);
  assert.deepEqual(pending.rows, [{ ts: null }]);
  await announcer.announce(end);
  await announcer.announce(end);
  assert.deepEqual(
    posts().map((p) => p.text),
    [':white_check_mark: Release freeze ended: releases may ship again.']
  );
});

test('"none" with no freeze before it is not announced', async () => {
  slack.calls.length = 0;
  const again = await change(false, 'none', 'No release freeze');
  await announcer.announce(again);
  assert.equal(posts().length, 0);
});

test('announcement texts', () => {
  assert.equal(
    announcementText({ frozen: true, cause: 'manual', reason: 'Manual freeze by grafana:ed: x' }, true),
    ':no_entry: Releases frozen by hand: Manual freeze by grafana:ed: x'
  );
  assert.equal(
    announcementText({ frozen: true, cause: 'quiet_period', reason: 'Resolved; quiet period until 12:30' }, false),
    'Releases frozen (quiet_period) now: Resolved; quiet period until 12:30'
  );
});
