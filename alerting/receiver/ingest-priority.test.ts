import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';
import { amPayload } from '../../testing/receiver-harness.ts';
import { createLogger } from '../../core/logger.ts';
import { ALERT_GROUP_TASK } from '../tasks.ts';
import { receiverTasks } from '../worker.ts';
import { NotificationInbox, storeNotification } from './inbox.ts';
import { IngestPriority } from '../../core/ingest-priority.ts';
import { alertmanagerPayload } from './payloads.ts';

describe('the inbox reports a backlog only when a notification has to wait for a batch', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => db.drop());
  const payload = (group: string) =>
    alertmanagerPayload.parse(amPayload(`{}:{alertname="Backlog",group="${group}"}`, [{ alertname: 'Backlog' }]));

  test('one notification at a time: no backlog; ten at once: a backlog', async () => {
    const priority = new IngestPriority(10_000);
    const inbox = new NotificationInbox(db.pool, 1, undefined, priority);
    for (const group of ['a', 'b', 'c']) await inbox.store('alertmanager', payload(group));
    assert.equal(priority.busy, false, 'calm traffic must not delay the alert-group jobs');
    await Promise.all(Array.from({ length: 10 }, (_, i) => inbox.store('alertmanager', payload(`storm-${i}`))));
    assert.equal(priority.busy, true);
  });

  test('the backlog passes: a job waiting on it starts once the storm is over', async () => {
    const priority = new IngestPriority(40);
    const inbox = new NotificationInbox(db.pool, 1, undefined, priority);
    const storm = Promise.all(Array.from({ length: 10 }, (_, i) => inbox.store('alertmanager', payload(`late-${i}`))));
    await sleep(1);
    const started = performance.now();
    const job = priority.yieldToWebhooks(5_000).then(() => performance.now());
    await storm;
    const stormAnswered = performance.now();
    const jobStarted = await job;
    assert.ok(jobStarted >= stormAnswered, 'the job started before the storm was stored');
    assert.ok(jobStarted - started < 2_000, `the job waited ${jobStarted - started} ms`);
  });
});

describe('the alert-group job waits out the backlog before it acts', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => db.drop());

  test('busy inbox: the state changes are acted on after maxWaitMs, not before; calm: at once', async () => {
    const priority = new IngestPriority(50);
    const tasks = receiverTasks(
      db.pool,
      null,
      createLogger('silent'),
      { timeZone: 'UTC' },
      { priority, maxWaitMs: 1_000 }
    );
    const run = (groupKey: string) =>
      (tasks[ALERT_GROUP_TASK] as (payload: unknown, helpers: unknown) => Promise<void>)(
        { source: 'alertmanager', groupKey },
        {}
      );
    const processed = async (groupKey: string) =>
      Number(
        (
          await db.pool.query<{ n: string }>(
            `SELECT count(*) AS n FROM controlroom.alert_events WHERE group_key = $1 AND processed_at IS NOT NULL`,
            [groupKey]
          )
        ).rows[0]!.n
      );
    for (const groupKey of ['calm', 'storm'])
      await storeNotification(
        db.pool,
        'alertmanager',
        alertmanagerPayload.parse(amPayload(groupKey, [{ alertname: 'Waits', severity: 'P2' }]))
      );

    let started = performance.now();
    await run('calm');
    assert.ok(performance.now() - started < 600, 'a calm inbox must not delay the job');
    assert.equal(await processed('calm'), 1);

    const storm = setInterval(() => priority.backlogSeen(), 5);
    try {
      priority.backlogSeen();
      started = performance.now();
      const job = run('storm');
      await sleep(400);
      assert.equal(await processed('storm'), 0, 'the job acted while the webhooks had a backlog');
      await job;
      assert.ok(performance.now() - started >= 995, 'the job did not wait out its bound');
      assert.equal(await processed('storm'), 1);
    } finally {
      clearInterval(storm);
    }
  });
});
