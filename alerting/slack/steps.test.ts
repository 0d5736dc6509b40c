import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { channelId, type SlackCall } from '../../testing/fake-slack.ts';
import { ALERT_GROUP_TASK } from '../tasks.ts';
import {
  amPayload,
  pressButton,
  startReceiverHarness,
  waitUntil,
  type ReceiverHarness,
  type TestAlert,
} from '../../testing/receiver-harness.ts';
import { ACK_ACTION } from './messages.ts';
import { ESCALATE_TASK, PAGE_REFRESH_TASK, ROOT_EVENT_TYPE, STORM_EVENT_TYPE, STORM_REFRESH_TASK } from './pager.ts';

/**
 * Each Slack step of a multi-step action fails once in turn (three 500s: the client retries twice, so
 * the job fails and the queue retries it), and every Slack message and update still happens exactly once.
 */
const SLACK_CLIENT_ATTEMPTS = 3;
const AM = '/webhooks/alertmanager';
const text = (c: SlackCall) => String(c.args.text ?? '');

async function quiet(h: ReceiverHarness, tasks: string[]): Promise<void> {
  await waitUntil(
    async () => {
      const {
        rows: [s],
      } = await h.db.pool.query<{ unprocessed: string; jobs: string }>(
        `SELECT (SELECT count(*) FROM controlroom.alert_events WHERE processed_at IS NULL) AS unprocessed,
                (SELECT count(*) FROM graphile_worker.jobs WHERE task_identifier = ANY($1::text[]) AND attempts < max_attempts) AS jobs`,
        [tasks]
      );
      return Number(s!.unprocessed) === 0 && Number(s!.jobs) === 0 && h.slack.pendingFailures === 0;
    },
    60_000,
    'the queue to settle'
  );
}

const pageFor = (h: ReceiverHarness, groupKey: string) =>
  waitUntil(
    async () =>
      (
        await h.db.pool.query(`SELECT * FROM controlroom.slack_pages WHERE group_key = $1 AND ts IS NOT NULL`, [
          groupKey,
        ])
      ).rows[0],
    20_000,
    'page'
  );

const failed = (h: ReceiverHarness, match: (c: SlackCall) => boolean) =>
  h.slack.calls.filter((c) => c.status !== 200 && match(c)).length;

describe('each Slack step is done once across retries', () => {
  let h: ReceiverHarness;
  before(async () => {
    h = await startReceiverHarness({ SLACK_ESCALATION_DELAY_SECONDS: '2' });
  });
  after(async () => h.stop());
  const settle = () => quiet(h, [ALERT_GROUP_TASK, PAGE_REFRESH_TASK]);

  test('a page resolving while chat.update fails posts its Resolved reply once', async () => {
    const groupKey = '{}:{alertname="QuoteLatencyBurn"}';
    const alert: TestAlert = { alertname: 'QuoteLatencyBurn', severity: 'P2' };
    assert.equal((await h.post(AM, amPayload(groupKey, [alert]))).status, 200);
    const page = await pageFor(h, groupKey);
    await settle();
    const isUpdate = (c: SlackCall) => c.method === 'chat.update' && c.args.ts === page.ts;
    h.slack.failNext(SLACK_CLIENT_ATTEMPTS, 500, { method: 'chat.update', match: (a) => a.ts === page.ts });
    assert.equal((await h.post(AM, amPayload(groupKey, [{ ...alert, status: 'resolved' }]))).status, 200);
    await settle();

    assert.equal(failed(h, isUpdate), SLACK_CLIENT_ATTEMPTS, 'the update failed once');
    const replies = h.slack.ok('chat.postMessage').filter((c) => c.args.thread_ts === page.ts);
    assert.deepEqual(
      replies.map((c) => text(c).split('\n')[0]),
      ['*Resolved (1)*']
    );
    const updates = h.slack.ok('chat.update').filter((c) => c.args.ts === page.ts);
    assert.equal(updates.length, 1);
    assert.match(text(updates[0]!), /RESOLVED/);
  });

  test('a failed thread reply is posted once, and the root updated once', async () => {
    const groupKey = '{}:{alertname="AgentQueueBacklog"}';
    const first: TestAlert = { alertname: 'AgentQueueBacklog', severity: 'P3', labels: { fn: 'a' } };
    await h.post(AM, amPayload(groupKey, [first]));
    const page = await pageFor(h, groupKey);
    await settle();
    h.slack.failNext(SLACK_CLIENT_ATTEMPTS, 500, { method: 'chat.postMessage', match: (a) => a.thread_ts === page.ts });
    await h.post(AM, amPayload(groupKey, [first, { ...first, labels: { fn: 'b' }, summary: 'second backlog' }]));
    await settle();

    assert.equal(
      failed(h, (c) => c.args.thread_ts === page.ts),
      SLACK_CLIENT_ATTEMPTS
    );
    const replies = h.slack.ok('chat.postMessage').filter((c) => c.args.thread_ts === page.ts);
    assert.equal(replies.length, 1);
    assert.match(text(replies[0]!), /second backlog/);
    const updates = h.slack.ok('chat.update').filter((c) => c.args.ts === page.ts);
    assert.equal(updates.length, 1);
    assert.match(text(updates[0]!), /FIRING:2/);
  });

  test('an escalation whose post and then whose thread note fail escalates once', async () => {
    const groupKey = '{}:{alertname="ActiveRegionDown"}';
    const isEscalation = (a: Record<string, unknown>) =>
      a.channel === '#controlroom-escalations' && /ActiveRegionDown/.test(String(a.text));
    const isNote = (ts: string) => (a: Record<string, unknown>) =>
      a.thread_ts === ts && /^Escalated to/.test(String(a.text));
    h.slack.failNext(SLACK_CLIENT_ATTEMPTS, 500, { method: 'chat.postMessage', match: isEscalation });
    await h.post(
      AM,
      amPayload(groupKey, [{ alertname: 'ActiveRegionDown', severity: 'P1', labels: { region: 'eu-west-1' } }])
    );
    const page = await pageFor(h, groupKey);
    h.slack.failNext(SLACK_CLIENT_ATTEMPTS, 500, { method: 'chat.postMessage', match: isNote(page.ts) });
    await waitUntil(
      async () =>
        (await h.db.pool.query(`SELECT escalated_at FROM controlroom.slack_pages WHERE id = $1`, [page.id])).rows[0]
          .escalated_at,
      60_000,
      'escalation'
    );
    await quiet(h, [ALERT_GROUP_TASK, ESCALATE_TASK]);

    assert.equal(
      failed(h, (c) => isEscalation(c.args)),
      SLACK_CLIENT_ATTEMPTS,
      'the escalation post failed once'
    );
    assert.equal(
      failed(h, (c) => isNote(page.ts)(c.args)),
      SLACK_CLIENT_ATTEMPTS,
      'the thread note failed once'
    );
    assert.equal(h.slack.ok('chat.postMessage').filter((c) => isEscalation(c.args)).length, 1);
    assert.equal(h.slack.ok('chat.postMessage').filter((c) => isNote(page.ts)(c.args)).length, 1);
    const audited = await h.db.pool.query(
      `SELECT count(*)::int AS n FROM audit_log WHERE action = 'slack.page_escalated' AND target = $1`,
      [`slack_pages/${page.id}`]
    );
    assert.equal(audited.rows[0].n, 1);
  });

  test('an Acknowledge whose root update and then whose note fail shows each once', async () => {
    const groupKey = '{}:{alertname="UsageAbove90Percent"}';
    await h.post(AM, amPayload(groupKey, [{ alertname: 'UsageAbove90Percent', severity: 'P2' }]));
    const page = await pageFor(h, groupKey);
    await settle();
    const isNote = (a: Record<string, unknown>) => a.thread_ts === page.ts && a.text === 'Acknowledged by @oncall.ana.';
    h.slack.failNext(SLACK_CLIENT_ATTEMPTS, 500, { method: 'chat.update', match: (a) => a.ts === page.ts });
    h.slack.failNext(SLACK_CLIENT_ATTEMPTS, 500, { method: 'chat.postMessage', match: isNote });
    assert.equal((await pressButton(h.base, page.id, ACK_ACTION)).status, 200);
    await settle();

    assert.equal(
      failed(h, (c) => c.method === 'chat.update' && c.args.ts === page.ts),
      SLACK_CLIENT_ATTEMPTS
    );
    assert.equal(
      failed(h, (c) => isNote(c.args)),
      SLACK_CLIENT_ATTEMPTS
    );
    const updates = h.slack.ok('chat.update').filter((c) => c.args.ts === page.ts);
    assert.equal(updates.length, 1);
    assert.match(JSON.stringify(updates[0]!.args.blocks), /Acknowledged by @oncall.ana/);
    assert.equal(h.slack.ok('chat.postMessage').filter((c) => isNote(c.args)).length, 1);
  });
});

describe('storm threshold under concurrent workers', () => {
  const THRESHOLD = 3;
  const GROUPS = 16;
  const CHANNEL = '#x3-storm-tickets';
  let h: ReceiverHarness;
  before(async () => {
    h = await startReceiverHarness({
      ALERT_STORM_THRESHOLD: String(THRESHOLD),
      JOB_CONCURRENCY: '6',
      SLACK_CHANNEL_P3: CHANNEL,
    });
  });
  after(async () => h.stop());
  const settle = () => quiet(h, [ALERT_GROUP_TASK, STORM_REFRESH_TASK]);
  const alertOf = (i: number): TestAlert => ({
    alertname: 'CarrierSyncFailing',
    severity: 'P3',
    labels: { carrier: `c${i}` },
  });
  const groupOf = (i: number) => `{}:{carrier="c${i}"}`;
  const isDigest = (c: SlackCall) => /Alert storm/.test(text(c));

  test('exactly ALERT_STORM_THRESHOLD roots reach the channel, the rest fold into one digest', async () => {
    const answers = await Promise.all(
      Array.from({ length: GROUPS }, (_, i) => h.post(AM, amPayload(groupOf(i), [alertOf(i)])))
    );
    assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([200]));
    await settle();
    const posts = h.slack.ok('chat.postMessage').filter((c) => c.args.channel === CHANNEL && !c.args.thread_ts);
    assert.equal(posts.filter((c) => !isDigest(c)).length, THRESHOLD, 'roots');
    assert.equal(posts.filter(isDigest).length, 1, 'digests');
    const { rows } = await h.db.pool.query<{ rooted: number; folded: number }>(
      `SELECT count(*) FILTER (WHERE ts IS NOT NULL)::int AS rooted, count(*) FILTER (WHERE storm_id IS NOT NULL)::int AS folded FROM controlroom.slack_pages`
    );
    assert.deepEqual(rows[0], { rooted: THRESHOLD, folded: GROUPS - THRESHOLD });
  });

  test('a digest refresh that fails is shown once, and the storm closes once', async () => {
    const digest = h.slack.ok('chat.postMessage').find(isDigest)!;
    const digestTs = (await h.db.pool.query(`SELECT ts FROM controlroom.slack_storms`)).rows[0].ts as string;
    assert.ok(digest && digestTs);
    h.slack.failNext(SLACK_CLIENT_ATTEMPTS, 500, { method: 'chat.update', match: (a) => a.ts === digestTs });
    await Promise.all(
      Array.from({ length: GROUPS }, (_, i) =>
        h.post(AM, amPayload(groupOf(i), [{ ...alertOf(i), status: 'resolved' }]))
      )
    );
    await waitUntil(
      async () => (await h.db.pool.query(`SELECT closed_at FROM controlroom.slack_storms`)).rows[0].closed_at,
      60_000,
      'the storm to close'
    );
    await settle();

    assert.equal(
      failed(h, (c) => c.method === 'chat.update' && c.args.ts === digestTs),
      SLACK_CLIENT_ATTEMPTS
    );
    const renderings = [digest, ...h.slack.ok('chat.update').filter((c) => c.args.ts === digestTs)].map((c) =>
      JSON.stringify([c.args.text, c.args.blocks])
    );
    assert.equal(new Set(renderings).size, renderings.length, 'no rendering of the digest was sent twice');
    assert.match(renderings.at(-1)!, /Alert storm over/);
    const closed = await h.db.pool.query(
      `SELECT count(*)::int AS n FROM audit_log WHERE action = 'slack.storm_closed'`
    );
    assert.equal(closed.rows[0].n, 1);
    // The rooted pages each got one Resolved reply.
    const replies = h.slack.ok('chat.postMessage').filter((c) => c.args.channel !== CHANNEL || c.args.thread_ts);
    assert.equal(replies.filter((c) => /Resolved \(1\)/.test(text(c))).length, THRESHOLD);
  });
});

describe('a page root is posted once across a crash around its post', () => {
  const CHANNEL = '#p3-root-once-tickets';
  let h: ReceiverHarness;
  before(async () => {
    h = await startReceiverHarness({ SLACK_CHANNEL_P3: CHANNEL });
  });
  after(async () => h.stop());
  const settle = () => quiet(h, [ALERT_GROUP_TASK, PAGE_REFRESH_TASK]);
  const rootsOf = (pageId: string) =>
    h.slack.ok('chat.postMessage').filter((c) => {
      const metadata = c.args.metadata as { event_type?: string; event_payload?: { page_id?: string } } | undefined;
      return (
        !c.args.thread_ts && metadata?.event_type === ROOT_EVENT_TYPE && metadata.event_payload?.page_id === pageId
      );
    });

  test('a root Slack accepted but whose record failed is adopted by the retry, not posted again', async () => {
    const groupKey = '{}:{alertname="RateShopTimeouts"}';
    // The crash: the transaction recording the root's ts fails once, after Slack accepted the post.
    // (A sequence, not a table: nextval survives the rollback of the failed transaction.)
    await h.db.pool.query(`
      CREATE SEQUENCE test_root_record_attempts;
      CREATE FUNCTION test_fail_root_record_once() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.group_key = TG_ARGV[0] AND OLD.ts IS NULL AND NEW.ts IS NOT NULL
           AND nextval('test_root_record_attempts') = 1 THEN
          RAISE EXCEPTION 'simulated crash between Slack''s answer and the root''s record';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER test_fail_root_record_once BEFORE UPDATE ON controlroom.slack_pages
        FOR EACH ROW EXECUTE FUNCTION test_fail_root_record_once('${groupKey}');`);
    const alert: TestAlert = { alertname: 'RateShopTimeouts', severity: 'P3' };
    assert.equal((await h.post(AM, amPayload(groupKey, [alert]))).status, 200);
    const page = await pageFor(h, groupKey);
    await settle();

    const attempts = await h.db.pool.query(`SELECT last_value::int AS n FROM test_root_record_attempts`);
    assert.equal(attempts.rows[0].n, 2, 'the first record failed, the retry recorded');
    const roots = rootsOf(page.id);
    assert.equal(roots.length, 1, 'one root in Slack');
    assert.equal(page.ts, h.slack.messages.get(channelId(CHANNEL))![0]!.ts, 'the retry adopted the posted root');
    assert.equal(page.channel_id, channelId(CHANNEL));
    // The channel was known only by name: resolved by conversations.list, then searched by id.
    assert.equal(h.slack.ok('conversations.list').length, 1);
    const lookups = h.slack.ok('conversations.history');
    assert.equal(lookups.length, 1);
    assert.equal(lookups[0]!.args.channel, channelId(CHANNEL));
    assert.equal(String(lookups[0]!.args.include_all_metadata), 'true');
    // The adopted root is redrawn once (the retry does not know what it shows), then updated as usual.
    assert.equal(h.slack.ok('chat.update').filter((c) => c.args.ts === page.ts).length, 1);
    const posted = await h.db.pool.query(
      `SELECT payload FROM audit_log WHERE action = 'slack.page_posted' AND target = $1`,
      [`slack_pages/${page.id}`]
    );
    assert.deepEqual(
      posted.rows.map((r) => r.payload.adopted),
      [true]
    );
    assert.equal((await h.post(AM, amPayload(groupKey, [{ ...alert, status: 'resolved' }]))).status, 200);
    await settle();
    const replies = h.slack.ok('chat.postMessage').filter((c) => c.args.thread_ts === page.ts);
    assert.deepEqual(
      replies.map((c) => text(c).split('\n')[0]),
      ['*Resolved (1)*']
    );
    const updates = h.slack.ok('chat.update').filter((c) => c.args.ts === page.ts);
    assert.equal(updates.length, 2);
    assert.match(text(updates[1]!), /RESOLVED/);
    assert.equal(rootsOf(page.id).length, 1);
    await h.db.pool.query(
      `DROP TRIGGER test_fail_root_record_once ON controlroom.slack_pages; DROP FUNCTION test_fail_root_record_once();`
    );
  });

  test('a root whose first attempt never reached Slack is posted once by the retry', async () => {
    const groupKey = '{}:{alertname="TenderAcceptanceLow"}';
    const isRoot = (a: Record<string, unknown>) =>
      !a.thread_ts &&
      (a.metadata as { event_type?: string } | undefined)?.event_type === ROOT_EVENT_TYPE &&
      /TenderAcceptanceLow/.test(String(a.text));
    h.slack.failNext(SLACK_CLIENT_ATTEMPTS, 500, { method: 'chat.postMessage', match: isRoot });
    const historyBefore = h.slack.ok('conversations.history').length;
    assert.equal(
      (await h.post(AM, amPayload(groupKey, [{ alertname: 'TenderAcceptanceLow', severity: 'P3' }]))).status,
      200
    );
    const page = await pageFor(h, groupKey);
    await settle();

    assert.equal(
      failed(h, (c) => isRoot(c.args)),
      SLACK_CLIENT_ATTEMPTS,
      'the first attempt failed'
    );
    const roots = rootsOf(page.id);
    assert.equal(roots.length, 1);
    assert.equal(page.ts, h.slack.messages.get(channelId(CHANNEL))!.at(-1)!.ts);
    // The retry looked first (the channel id now known from the other page), found nothing, then posted.
    assert.equal(h.slack.ok('conversations.history').length, historyBefore + 1);
    assert.equal(h.slack.ok('conversations.list').length, 1);
    const intent = await h.db.pool.query(`SELECT root_attempted_at FROM controlroom.slack_pages WHERE id = $1`, [
      page.id,
    ]);
    assert.ok(intent.rows[0].root_attempted_at, 'the intent was recorded before the first post');
  });

  test('a failing root lookup fails the job instead of posting blind', async () => {
    const groupKey = '{}:{alertname="EdiBacklogGrowing"}';
    const isRoot = (a: Record<string, unknown>) => !a.thread_ts && /EdiBacklogGrowing/.test(String(a.text));
    h.slack.failNext(SLACK_CLIENT_ATTEMPTS, 500, { method: 'chat.postMessage', match: isRoot });
    h.slack.failNext(SLACK_CLIENT_ATTEMPTS, 500, { method: 'conversations.history' });
    assert.equal(
      (await h.post(AM, amPayload(groupKey, [{ alertname: 'EdiBacklogGrowing', severity: 'P3' }]))).status,
      200
    );
    const page = await pageFor(h, groupKey);
    await settle();

    assert.equal(
      failed(h, (c) => c.method === 'conversations.history'),
      SLACK_CLIENT_ATTEMPTS
    );
    // Attempt 1 failed to post, attempt 2 failed to look, attempt 3 looked, found nothing and posted once.
    assert.equal(rootsOf(page.id).length, 1);
    assert.equal(h.slack.ok('chat.postMessage').filter((c) => isRoot(c.args)).length, 1);
  });

  test('a bot token without the history scope still pages: the lookup refused for good posts, logged, once', async () => {
    const groupKey = '{}:{alertname="DockSchedulerStalled"}';
    const isRoot = (a: Record<string, unknown>) => !a.thread_ts && /DockSchedulerStalled/.test(String(a.text));
    h.slack.failNext(SLACK_CLIENT_ATTEMPTS, 500, { method: 'chat.postMessage', match: isRoot });
    h.slack.refuseScope('conversations.history');
    h.slack.refuseScope('conversations.list');
    try {
      assert.equal(
        (await h.post(AM, amPayload(groupKey, [{ alertname: 'DockSchedulerStalled', severity: 'P3' }]))).status,
        200
      );
      const page = await pageFor(h, groupKey);
      await settle();
      // Attempt 1 failed to post (intent recorded); attempt 2 could not look (missing_scope) and posted.
      assert.ok(
        h.slack.calls.some((c) => c.refused === 'missing_scope'),
        'the lookup was tried and refused'
      );
      assert.equal(rootsOf(page.id).length, 1);
      assert.equal(h.slack.ok('chat.postMessage').filter((c) => isRoot(c.args)).length, 1);
    } finally {
      h.slack.grant('conversations.history');
      h.slack.grant('conversations.list');
    }
  });
});

describe('a storm digest is posted once across a crash after Slack answered', () => {
  const CHANNEL = '#p3-digest-once-tickets';
  let h: ReceiverHarness;
  before(async () => {
    h = await startReceiverHarness({ SLACK_CHANNEL_P3: CHANNEL, ALERT_STORM_THRESHOLD: '1' });
  });
  after(async () => h.stop());

  test('a digest Slack accepted but whose record failed is adopted by the retry, not posted again', async () => {
    await h.db.pool.query(`
      CREATE SEQUENCE test_digest_record_attempts;
      CREATE FUNCTION test_fail_digest_record_once() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF OLD.ts IS NULL AND NEW.ts IS NOT NULL AND nextval('test_digest_record_attempts') = 1 THEN
          RAISE EXCEPTION 'simulated crash between Slack''s answer and the digest''s record';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER test_fail_digest_record_once BEFORE UPDATE ON controlroom.slack_storms
        FOR EACH ROW EXECUTE FUNCTION test_fail_digest_record_once();`);
    for (const carrier of ['a', 'b', 'c'])
      assert.equal(
        (
          await h.post(
            AM,
            amPayload(`{}:{carrier="${carrier}"}`, [
              { alertname: 'CarrierSyncFailing', severity: 'P3', labels: { carrier } },
            ])
          )
        ).status,
        200
      );
    const storm = await waitUntil(
      async () => (await h.db.pool.query(`SELECT * FROM controlroom.slack_storms WHERE ts IS NOT NULL`)).rows[0],
      30_000,
      'the digest recorded'
    );
    await quiet(h, [ALERT_GROUP_TASK, STORM_REFRESH_TASK]);

    const attempts = await h.db.pool.query(`SELECT last_value::int AS n FROM test_digest_record_attempts`);
    assert.equal(attempts.rows[0].n, 2, 'the first record failed, the retry recorded');
    const digests = h.slack
      .ok('chat.postMessage')
      .filter((c) => (c.args.metadata as { event_type?: string } | undefined)?.event_type === STORM_EVENT_TYPE);
    assert.equal(digests.length, 1, 'one digest in Slack');
    assert.equal(storm.ts, digests[0]!.ts, 'the retry adopted the posted digest');
    assert.equal(h.slack.ok('conversations.history').length, 1);
    const opened = await h.db.pool.query(`SELECT payload FROM audit_log WHERE action = 'slack.storm_opened'`);
    assert.deepEqual(
      opened.rows.map((r) => r.payload.adopted),
      [true]
    );
    // Redrawn after adoption, since the retry cannot know what the adopted digest shows.
    assert.ok(h.slack.ok('chat.update').some((c) => c.args.ts === storm.ts));
  });
});
