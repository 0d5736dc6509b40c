import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadConfig } from '../cli/config.ts';
import { startServices, type RunningServices } from '../cli/services.ts';
import { createLogger } from '../core/logger.ts';
import { insertCompany } from '../testing/companies.ts';
import { FakeSlack } from '../testing/fake-slack.ts';
import { createTestDatabase, type TestDatabase } from '../testing/postgres.ts';
import { AM_TOKEN, amPayload, waitUntil } from '../testing/receiver-harness.ts';

/**
 * Two Control Room instances on one Postgres, as in production (README, "Running two instances"): the
 * two Alertmanagers of a cluster may both deliver the same notification, one to each instance, at the
 * same moment (gossip late or partitioned). Whatever instance stores it first, the alert acts once: one
 * Slack page per group, one notify_ops task per usage threshold, one freeze trigger and one freeze change.
 */

const CHANNEL = '#p2-two-instances';
const GROUPS = 12;

let db: TestDatabase;
let slack: FakeSlack;
const instances: RunningServices[] = [];

before(async () => {
  db = await createTestDatabase();
  slack = await FakeSlack.start();
  for (const id of ['ha-a', 'ha-b']) {
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      EXPORTER_REFRESH_MS: '60000',
      // Distinct ids, as every instance of a pair must have (their queue workers are named after it).
      CONTROLROOM_INSTANCE_ID: id,
      ALERTMANAGER_WEBHOOK_TOKEN: AM_TOKEN,
      SLACK_BOT_TOKEN: 'xoxb-test-token',
      SLACK_API_URL: slack.apiUrl,
      SLACK_CHANNEL_P1: CHANNEL,
      SLACK_CHANNEL_P2: CHANNEL,
      SLACK_CHANNEL_P3: CHANNEL,
      SLACK_CHANNEL_INTERVAL_MS: '5',
      // Above the number of groups: every group gets a root of its own (no storm digest to fold into).
      ALERT_STORM_THRESHOLD: String(GROUPS * 4),
      JOB_CONCURRENCY: '3',
    });
    instances.push(await startServices(db.url, config, createLogger('silent')));
  }
});
after(async () => {
  for (const services of instances) await services.stop();
  await slack.close();
  await db.drop();
});

const count = async (sql: string, params: unknown[] = []) =>
  Number((await db.pool.query<{ n: string }>(sql, params)).rows[0]!.n);

/** Delivers one body to one instance; both Alertmanagers of a cluster send the same receiver payload. */
async function deliver(services: RunningServices, body: unknown): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${services.port}/webhooks/alertmanager`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${AM_TOKEN}` },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, await res.text());
}

test(
  'the same notifications delivered to both instances at once act once: one page, one task, one freeze',
  { timeout: 180_000 },
  async () => {
    const [a, b] = instances as [RunningServices, RunningServices];
    const companyId = await insertCompany(db.pool, 'Twice Delivered Freight', 'pro');
    await db.pool.query(
      `INSERT INTO usage_events (company_id, feature_key, qty, occurred_at) VALUES ($1, 'rates', 460, now())`,
      [companyId]
    );
    const startsAt = new Date(Date.now() - 60_000).toISOString();
    const notifications = [
      // Pages only.
      ...Array.from({ length: GROUPS - 2 }, (_, i) =>
        amPayload(`{}:{alertname="TwiceDelivered${i}"}`, [
          { alertname: `TwiceDelivered${i}`, severity: 'P2', startsAt },
        ])
      ),
      // A usage alert: a page and a notify_ops task.
      amPayload(`{}:{alertname="UsageAbove80Percent",company_id="${companyId}"}`, [
        {
          alertname: 'UsageAbove80Percent',
          severity: 'P3',
          labels: { company_id: companyId, feature: 'rates', threshold: '80' },
          startsAt,
        },
      ]),
      // An SLO page: a page, a freeze trigger, and the release freeze turned on once.
      amPayload(`{}:{alertname="ErrorBudgetHalfSpent"}`, [
        { alertname: 'ErrorBudgetHalfSpent', severity: 'P2', labels: { slo: 'api-availability' }, startsAt },
      ]),
    ];
    // Each notification to both instances at the same moment, every notification at once: the deliveries
    // race on the inbox's insert and the two instances' workers race on the group's job.
    await Promise.all(notifications.flatMap((body) => [deliver(a, body), deliver(b, body)]));

    await waitUntil(
      async () =>
        (await count(`SELECT count(*) AS n FROM controlroom.alert_events WHERE processed_at IS NULL`)) === 0 &&
        (await count(`SELECT count(*) AS n FROM controlroom.slack_pages WHERE ts IS NOT NULL`)) >= GROUPS,
      120_000,
      'every group to be acted on'
    );
    // Let any second, wrongly queued action run before counting.
    await new Promise((r) => setTimeout(r, 1_500));

    assert.equal(await count(`SELECT count(*) AS n FROM controlroom.alert_notifications`), GROUPS * 2);
    assert.equal(await count(`SELECT count(*) AS n FROM controlroom.alert_events`), GROUPS, 'one event per alert');
    assert.equal(await count(`SELECT count(*) AS n FROM controlroom.slack_pages`), GROUPS, 'one page per group');
    const posted = slack
      .ok('chat.postMessage')
      .filter((c) => c.args.channel === CHANNEL && !c.args.thread_ts)
      .map((c) => String(c.args.text));
    // The freeze is announced in the P2 channel too (once, checked below).
    const roots = posted.filter((text) => !/^:no_entry: Releases frozen/.test(text));
    assert.equal(roots.length, GROUPS, `one Slack root per group, got:\n${roots.join('\n')}`);
    assert.equal(
      await count(`SELECT count(*) AS n FROM agent_tasks WHERE fn_name = 'notify_ops' AND company_id = $1`, [
        companyId,
      ]),
      1,
      'one notify_ops task'
    );
    assert.equal(await count(`SELECT count(*) AS n FROM controlroom.freeze_triggers`), 1, 'one freeze trigger');
    await waitUntil(
      async () => (await db.pool.query(`SELECT frozen FROM controlroom.freeze_state WHERE id = 1`)).rows[0]?.frozen,
      60_000,
      'the release freeze'
    );
    assert.equal(
      await count(`SELECT count(*) AS n FROM controlroom.freeze_history WHERE frozen`),
      1,
      'the freeze turned on once'
    );
    await slack.waitFor((c) => c.args.channel === CHANNEL && /^:no_entry: Releases frozen/.test(String(c.args.text)));
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(
      slack.ok('chat.postMessage').filter((c) => /^:no_entry: Releases frozen/.test(String(c.args.text))).length,
      1,
      'the freeze announced once'
    );
  }
);
