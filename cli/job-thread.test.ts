import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Writable } from 'node:stream';
import { storeNotification } from '../alerting/receiver/inbox.ts';
import { alertmanagerPayload } from '../alerting/receiver/payloads.ts';
import { createLogger } from '../core/logger.ts';
import { createTestDatabase, freePort, type TestDatabase } from '../testing/postgres.ts';
import { amPayload, startReceiverHarness, waitUntil } from '../testing/receiver-harness.ts';
import { loadConfig } from './config.ts';
import { startJobQueueThread } from './job-thread.ts';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => db.drop());

const config = (extra: Record<string, string> = {}) =>
  loadConfig({ JOB_CONCURRENCY: '1', CONTROLROOM_INSTANCE_ID: 'thread-test', ...extra });

/** A logger whose records the test reads (the thread's lines arrive through it). */
function capturingLogger() {
  const records: Array<{ level: number; msg: string; thread?: string }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) records.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createLogger('info', sink, 'json'), records };
}

/** Stores one alert notification (queuing its group's job) and returns the group key. */
async function alert(name: string): Promise<string> {
  const groupKey = `{}:{alertname="${name}"}`;
  await storeNotification(
    db.pool,
    'alertmanager',
    alertmanagerPayload.parse(amPayload(groupKey, [{ alertname: name, severity: 'P3' }]))
  );
  return groupKey;
}

const actedOn = (groupKey: string) =>
  waitUntil(
    async () =>
      (
        await db.pool.query(
          `SELECT 1 FROM controlroom.alert_events WHERE group_key = $1 AND processed_at IS NOT NULL`,
          [groupKey]
        )
      ).rowCount === 1,
    // Generous: a thread boots in about a second on a quiet machine, many under a shared machine's load.
    60_000,
    `the alert of ${groupKey} to be acted on`
  );

test('the queue on its thread acts on alerts; a thread that dies is started again and resumes the job it held', async () => {
  const { logger, records } = capturingLogger();
  // A long restart delay, so the test can leave a job locked by the dead thread before its successor starts.
  const queue = await startJobQueueThread(db.url, config(), logger, { restartDelayMs: 5_000 });
  try {
    assert.deepEqual(queue.workerIds, ['controlroom-thread-test-0']);
    await actedOn(await alert('BeforeCrash'));

    await queue.crash();
    const groupKey = await alert('HeldByTheDeadThread');
    const locked = await db.pool.query(
      `UPDATE graphile_worker._private_jobs SET locked_at = now(), locked_by = $1 WHERE key = $2 RETURNING id`,
      [queue.workerIds[0], `alert_group:alertmanager:${groupKey}`]
    );
    assert.equal(locked.rowCount, 1, 'the job was queued and not run while the thread was dead');
    // graphile-worker would free the lock after four hours; the successor frees it at its start.
    await actedOn(groupKey);
    assert.ok(
      records.some((r) => r.level === 50 && /job queue thread exited/.test(r.msg)),
      'the thread death is logged as an error'
    );
    assert.ok(records.some((r) => /runs again/.test(r.msg)));
  } finally {
    await queue.stop();
  }
  // Stopped: nothing is left locked under its worker ids, and a new alert waits in the queue.
  const groupKey = await alert('AfterStop');
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  const { rows } = await db.pool.query<{ processed: boolean }>(
    `SELECT processed_at IS NOT NULL AS processed FROM controlroom.alert_events WHERE group_key = $1`,
    [groupKey]
  );
  assert.deepEqual(rows, [{ processed: false }]);
  const held = await db.pool.query(`SELECT 1 FROM graphile_worker._private_jobs WHERE locked_by IS NOT NULL`);
  assert.equal(held.rowCount, 0);
});

test('a thread that cannot start fails the start with the reason, and leaves no thread behind', async () => {
  const closedPort = await freePort();
  await assert.rejects(
    startJobQueueThread(
      `postgres://nobody@127.0.0.1:${closedPort}/nothing`,
      config({ PG_CONNECT_TIMEOUT_MS: '2000' }),
      createLogger('silent')
    ),
    /ECONNREFUSED|connect/
  );
});

test('startServices with JOB_QUEUE_THREAD=true: a webhook is answered on the main thread and paged from the queue thread', async () => {
  const h = await startReceiverHarness({ JOB_QUEUE_THREAD: 'true', JOB_CONCURRENCY: '2' });
  try {
    const groupKey = '{}:{alertname="ThreadedPage"}';
    const res = await h.post(
      '/webhooks/alertmanager',
      amPayload(groupKey, [{ alertname: 'ThreadedPage', severity: 'P2' }])
    );
    assert.equal(res.status, 200);
    await waitUntil(
      async () => h.slack.ok('chat.postMessage').some((c) => /ThreadedPage/.test(JSON.stringify(c.args))),
      60_000,
      'the page to reach Slack'
    );
    assert.deepEqual(h.services.worker.workerIds.length, 2);
  } finally {
    await h.stop();
  }
});
