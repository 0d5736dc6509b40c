import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createPool } from '../../core/db.ts';
import { queueNameFor } from '../../core/jobs.ts';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';
import { amPayload, type TestAlert } from '../../testing/receiver-harness.ts';
import { ALERT_GROUP_TASK } from '../tasks.ts';
import { NotificationInbox, storeNotifications, WARM_UP_GROUP_PREFIX, type InboxResult } from './inbox.ts';
import { alertmanagerPayload, type NotificationPayload } from './payloads.ts';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => db.drop());
beforeEach(async () => {
  await db.pool.query(`TRUNCATE controlroom.alert_events, controlroom.alert_notifications CASCADE`);
  await db.pool.query(`DELETE FROM graphile_worker._private_jobs`);
});

const notification = (groupKey: string, alerts: TestAlert[]): NotificationPayload =>
  alertmanagerPayload.parse(amPayload(groupKey, alerts));
const alerts = (names: string[]) => names.map((name) => ({ alertname: 'Batch', fingerprint: name }));
const count = async (sql: string) => Number((await db.pool.query<{ n: string }>(sql)).rows[0]!.n);
/**
 * Two turns of the event loop: the inbox starts a batch two turns after a notification reaches an idle
 * inbox (NotificationInbox.scheduleStart), and setImmediate callbacks run in the order they were queued, so
 * after this the batch holding what was stored before has started.
 */
const twoTurns = async () => {
  for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve));
};

describe('the inbox batches concurrent notifications (group commit)', () => {
  // ALERT_INBOX_BATCHES: one batch at a time (the default), or two overlapping transactions that store
  // the same state changes and queue the same groups concurrently.
  for (const batches of [1, 2])
    test(`each state change is new exactly once across a batch, every notification is stored, each group queued once (${batches} batch${batches > 1 ? 'es' : ''} at once)`, async () => {
      const inbox = new NotificationInbox(db.pool, batches);
      // 40 notifications: 8 groups, each delivered 5 times with growing (overlapping) alert sets, so one
      // batch holds the same state change several times, in an order that is not the key's. In two waves:
      // the second arrives once the first's batch has started, so it waits for it (1 batch at once) or is
      // stored beside it (2), and both waves store and queue the same groups.
      const deliveries = Array.from({ length: 40 }, (_, i) => {
        const group = `{}:{alertname="Batch",group="${i % 8}"}`;
        const size = 1 + Math.floor(i / 8); // 1..5 alerts
        return notification(group, alerts(['e', 'd', 'c', 'b', 'a'].slice(5 - size)));
      });
      const firstWave = deliveries.slice(0, 20).map((p) => inbox.store('alertmanager', p));
      await twoTurns();
      const secondWave = deliveries.slice(20).map((p) => inbox.store('alertmanager', p));
      const results: InboxResult[] = await Promise.all([...firstWave, ...secondWave]);

      assert.equal(
        results.reduce((n, r) => n + r.newEvents, 0),
        8 * 5,
        'each (group, fingerprint) counted new once'
      );
      for (const [i, r] of results.entries())
        assert.equal(r.newEvents + r.duplicates, deliveries[i]!.alerts.length, `notification ${i} adds up`);
      assert.equal(new Set(results.map((r) => r.notificationId)).size, 40, 'one notification id each');
      assert.equal(await count(`SELECT count(*) AS n FROM controlroom.alert_notifications`), 40);
      assert.equal(await count(`SELECT count(*) AS n FROM controlroom.alert_events`), 40);
      // Each stored event belongs to the notification that was told it was new.
      const { rows } = await db.pool.query<{ notification_id: string; n: string }>(
        `SELECT notification_id, count(*) AS n FROM controlroom.alert_events GROUP BY notification_id`
      );
      const perNotification = new Map(rows.map((r) => [Number(r.notification_id), Number(r.n)]));
      for (const r of results) assert.equal(perNotification.get(r.notificationId) ?? 0, r.newEvents);
      // One transaction per wave: the notifications that arrived together share a batch.
      const transactions = await count(`SELECT count(DISTINCT xmin::text) AS n FROM controlroom.alert_notifications`);
      assert.equal(transactions, 2, `${transactions} transactions for 40 notifications in two waves`);
      // One pending alert_group job per group, in the group's own queue.
      const { rows: jobs } = await db.pool.query<{ group_key: string }>(
        `SELECT j.payload->>'groupKey' AS group_key FROM graphile_worker._private_jobs j
         JOIN graphile_worker._private_tasks t ON t.id = j.task_id WHERE t.identifier = $1`,
        [ALERT_GROUP_TASK]
      );
      assert.equal(jobs.length, 8);
      assert.equal(new Set(jobs.map((j) => j.group_key)).size, 8);
    });

  test('a notification Postgres refuses fails alone: the rest of its batch is stored and answered', async () => {
    const failures: number[] = [];
    const inbox = new NotificationInbox(db.pool, 1, (_error, size) => failures.push(size));
    const good = (i: number) => notification(`{}:{alertname="Batch",group="ok${i}"}`, alerts([`ok${i}`]));
    // Validation refuses 30 February (payloads.ts); here it is let through, as an input Postgres refuses
    // would be: it must not take the rest of its batch down with it.
    const valid = notification('{}:{alertname="Batch",group="bad"}', alerts(['bad']));
    const bad = { ...valid, alerts: valid.alerts.map((a) => ({ ...a, startsAt: '2026-02-30T00:00:00Z' })) };
    const first = inbox.store('alertmanager', good(0));
    await twoTurns(); // its batch started alone: the others queue behind it
    const batch = [good(1), bad, good(2), good(3)].map((p) =>
      inbox.store('alertmanager', p).then(
        (r) => ({ ok: true as const, r }),
        (error: Error) => ({ ok: false as const, error })
      )
    );
    await first;
    const settled = await Promise.all(batch);
    assert.deepEqual(
      settled.map((s) => s.ok),
      [true, false, true, true]
    );
    assert.match((settled[1] as { error: Error }).error.message, /out of range/);
    assert.deepEqual(failures, [4], 'the batch of four failed once, then each went alone');
    assert.equal(await count(`SELECT count(*) AS n FROM controlroom.alert_notifications`), 4);
    assert.equal(await count(`SELECT count(*) AS n FROM controlroom.alert_events WHERE fingerprint = 'bad'`), 0);
  });

  test('a batch whose failure observer throws still answers each webhook, and the inbox goes on', async () => {
    const inbox = new NotificationInbox(db.pool, 1, () => {
      throw new Error('the log line failed');
    });
    const good = notification('{}:{alertname="Batch",group="observer-ok"}', alerts(['ok']));
    const valid = notification('{}:{alertname="Batch",group="observer-bad"}', alerts(['bad']));
    const bad = { ...valid, alerts: valid.alerts.map((a) => ({ ...a, startsAt: '2026-02-30T00:00:00Z' })) };
    const settled = await Promise.allSettled([inbox.store('alertmanager', good), inbox.store('alertmanager', bad)]);
    assert.deepEqual(
      settled.map((s) => s.status),
      ['fulfilled', 'rejected']
    );
    const after = await inbox.store(
      'alertmanager',
      notification('{}:{alertname="Batch",group="observer-after"}', alerts(['a']))
    );
    assert.equal(after.newEvents, 1, 'the next batch is stored');
  });

  test('notifications arriving together share one batch; the next starts before the first is answered', async () => {
    const pool = createPool(db.url, { max: 1, statementTimeoutMs: 30_000, applicationName: 'controlroom-inbox-test' });
    // What happens, in order: each statement's connection checkout (pool.connect is called synchronously
    // when a batch starts) and each answer the webhook would write.
    const events: string[] = [];
    const connect = pool.connect.bind(pool);
    pool.connect = (() => {
      events.push('batch started');
      return connect();
    }) as typeof pool.connect;
    try {
      const inbox = new NotificationInbox(pool, 1);
      const note = (i: number) => notification(`{}:{alertname="Batch",group="together${i}"}`, alerts([`t${i}`]));
      // Five in one turn, as the requests of a storm's first POSTs are read: one batch, not the first alone.
      const together = [0, 1, 2, 3, 4].map((i) =>
        inbox.store('alertmanager', note(i)).then((r) => (events.push(`answered ${i}`), r))
      );
      await twoTurns();
      // Arrives while that batch is stored: waits for it, and goes to Postgres before its answers are written.
      const later = inbox.store('alertmanager', note(5)).then((r) => (events.push('answered 5'), r));
      const results = await Promise.all([...together, later]);
      assert.deepEqual(events, [
        'batch started',
        'batch started',
        'answered 0',
        'answered 1',
        'answered 2',
        'answered 3',
        'answered 4',
        'answered 5',
      ]);
      assert.equal(new Set(results.slice(0, 5).map((r) => r.timings.store)).size, 1, 'the five in one statement');
      assert.equal(
        await count(`SELECT count(DISTINCT xmin::text) AS n FROM controlroom.alert_notifications`),
        2,
        'two transactions'
      );
    } finally {
      await pool.end();
    }
  });

  test('a date that does not exist is refused by validation, naming the field', () => {
    const parsed = alertmanagerPayload.safeParse(
      amPayload('g', [{ alertname: 'Batch', startsAt: '2026-02-30T00:00:00Z' }])
    );
    assert.equal(parsed.success, false);
    assert.deepEqual(
      parsed.error?.issues.map((i) => i.path.join('.')),
      ['alerts.0.startsAt']
    );
    assert.ok(
      alertmanagerPayload.safeParse(amPayload('g', [{ alertname: 'Batch', startsAt: '2028-02-29T23:00:00+02:00' }]))
        .success
    );
  });

  test('storeNotifications keeps the answers in the order of the notifications', async () => {
    const payloads = [
      notification('{}:{alertname="Batch",group="x"}', alerts(['a', 'b', 'c'])),
      notification('{}:{alertname="Batch",group="x"}', alerts(['a'])),
      notification('{}:{alertname="Batch",group="y"}', alerts(['a', 'b'])),
    ];
    const results = await storeNotifications(
      db.pool,
      payloads.map((payload) => ({ source: 'alertmanager' as const, payload }))
    );
    assert.deepEqual(
      results.map((r) => [r.newEvents, r.duplicates]),
      [
        [3, 0],
        [0, 1],
        [2, 0],
      ]
    );
    assert.ok(results[0]!.notificationId < results[1]!.notificationId);
    assert.ok(results[1]!.notificationId < results[2]!.notificationId);
  });
});

describe('the inbox warms its connections at start-up (NotificationInbox.warm)', () => {
  test('each connection has the statement prepared, nothing of the warm-up is left, and storing goes on as usual', async () => {
    const pool = createPool(db.url, {
      max: 2,
      statementTimeoutMs: 30_000,
      applicationName: 'controlroom-inbox-test',
      keepConnections: true,
    });
    try {
      const inbox = new NotificationInbox(pool, 2);
      await inbox.warm();
      assert.equal(pool.totalCount, 2, 'both connections opened');
      assert.equal(pool.idleCount, 2, 'and given back');
      // Both checked out at once, so each connection is looked at (prepared statements are per session).
      const clients = [await pool.connect(), await pool.connect()];
      try {
        for (const client of clients) {
          const { rows } = await client.query<{ name: string; runs: number }>(
            `SELECT name, (generic_plans + custom_plans)::int AS runs FROM pg_prepared_statements`
          );
          assert.deepEqual(
            rows.map((r) => r.name),
            ['controlroom.store_and_queue_notifications'],
            'the inbox statement is prepared on the connection'
          );
          // Past the five executions Postgres plans afresh (custom plans) before it may cache a generic one.
          assert.equal(rows[0]!.runs, 6, 'and has run six times');
        }
      } finally {
        for (const client of clients) client.release();
      }
      assert.equal(await count(`SELECT count(*) AS n FROM controlroom.alert_notifications`), 0, 'no notification');
      assert.equal(await count(`SELECT count(*) AS n FROM controlroom.alert_events`), 0, 'no state change');
      assert.equal(await count(`SELECT count(*) AS n FROM graphile_worker._private_jobs`), 0, 'no job');
      assert.equal(
        await count(
          `SELECT count(*) AS n FROM graphile_worker._private_job_queues WHERE queue_name = ANY(ARRAY[${Array.from(
            { length: 20 },
            (_, i) => `'${queueNameFor(ALERT_GROUP_TASK, `alertmanager:${WARM_UP_GROUP_PREFIX}:${i}`)}'`
          ).join(',')}])`
        ),
        0,
        'no job queue'
      );

      const stored = await inbox.store('alertmanager', notification('{}:{alertname="AfterWarmUp"}', alerts(['a'])));
      assert.equal(stored.newEvents, 1);
      assert.equal(await count(`SELECT count(*) AS n FROM graphile_worker._private_jobs`), 1, 'its group queued');
    } finally {
      await pool.end();
    }
  });

  test('a warm-up that cannot connect rejects with the reason (start-up logs it and goes on, cold)', async () => {
    const refused = createPool(db.url.replace(/:\d+\//, ':1/'), {
      max: 1,
      statementTimeoutMs: 30_000,
      applicationName: 'controlroom-inbox-test',
      connectTimeoutMs: 2_000,
    });
    try {
      await assert.rejects(new NotificationInbox(refused, 1).warm(), /ECONNREFUSED/);
    } finally {
      await refused.end();
    }
  });
});
