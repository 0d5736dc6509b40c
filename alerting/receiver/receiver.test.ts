import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { insertCompany } from '../../testing/companies.ts';
import { parseMetrics, seriesKey } from '../../testing/prom-text.ts';
import { channelId } from '../../testing/fake-slack.ts';
import { ACK_ACTION } from '../slack/messages.ts';
import {
  AM_TOKEN,
  amPayload,
  GRAFANA_HMAC,
  GRAFANA_TOKEN,
  pressButton,
  startReceiverHarness,
  waitUntil,
  type ReceiverHarness,
} from '../../testing/receiver-harness.ts';

let h: ReceiverHarness;
before(async () => {
  h = await startReceiverHarness({
    GRAFANA_WEBHOOK_HMAC_SECRET: GRAFANA_HMAC,
    GRAFANA_WEBHOOK_TIMESTAMP_HEADER: 'X-Grafana-Alerting-Signature-Timestamp',
    SLACK_ESCALATION_DELAY_SECONDS: '2',
  });
});
after(async () => h.stop());

const count = async (sql: string, params: unknown[] = []) => Number((await h.db.pool.query(sql, params)).rows[0].n);
const rootsFor = (pageId: string) =>
  h.slack
    .ok('chat.postMessage')
    .filter((c) => !c.args.thread_ts && JSON.stringify(c.args.blocks ?? '').includes(`page ${pageId}`));

describe('authentication and validation', () => {
  test('refuses a missing or wrong credential and stores nothing', async () => {
    const body = amPayload('auth-group', [{ alertname: 'X', severity: 'P3' }]);
    const none = await h.post('/webhooks/alertmanager', body, { authorization: '' });
    assert.equal(none.status, 401);
    assert.match(none.body.error, /missing Authorization header/);
    const wrong = await h.post('/webhooks/alertmanager', body, { authorization: 'Bearer not-the-token' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error, 'invalid Bearer credentials');
    const grafanaTokenOnAm = await h.post('/webhooks/alertmanager', body, { authorization: `Bearer ${GRAFANA_TOKEN}` });
    assert.equal(grafanaTokenOnAm.status, 401);
    assert.equal(await count(`SELECT count(*) AS n FROM controlroom.alert_notifications`), 0);
  });

  test('explains what is wrong with a malformed notification and stores nothing', async () => {
    const bad = await h.post('/webhooks/alertmanager', '{"version": "4", "alerts": [', {});
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /^body is not valid JSON/);
    const noName = amPayload('g', [{ alertname: 'X' }]);
    delete (noName.alerts[0]!.labels as Record<string, string>).alertname;
    const missing = await h.post('/webhooks/alertmanager', noName);
    assert.equal(missing.status, 400);
    assert.match(missing.body.error, /alerts\[0\]\.labels needs an alertname label/);
    const wrongVersion = await h.post('/webhooks/alertmanager', {
      ...amPayload('g', [{ alertname: 'X' }]),
      version: '3',
    });
    assert.equal(wrongVersion.status, 400);
    assert.match(wrongVersion.body.error, /version/);
    assert.equal(await count(`SELECT count(*) AS n FROM controlroom.alert_notifications`), 0);
  });

  test('a valid notification holding a value Postgres cannot store is refused (400, counted as rejected), stores nothing', async () => {
    const rejected = async () =>
      parseMetrics(await (await fetch(`${h.base}/metrics`)).text()).get(
        seriesKey('controlroom_alert_notifications_total', { outcome: 'rejected', source: 'alertmanager' })
      ) ?? 0;
    const rejectedBefore = await rejected();
    // JSON.parse and validation accept both; Postgres refuses a number beyond numeric's range (the body is
    // stored as received) and a NUL character in a string.
    const hugeNumber = JSON.stringify({ ...amPayload('pg-refuses-1', [{ alertname: 'X' }]), extra: 1 }).replace(
      '"extra":1',
      '"extra":1e1000000'
    );
    const nul = amPayload('pg-refuses-2', [{ alertname: 'X', labels: { note: 'a\u0000b' } }]);
    for (const body of [hugeNumber, nul]) {
      const res = await h.post('/webhooks/alertmanager', body);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.match(res.body.error, /^alertmanager notification cannot be stored: /);
    }
    assert.equal(
      await count(`SELECT count(*) AS n FROM controlroom.alert_notifications WHERE group_key LIKE 'pg-refuses-%'`),
      0
    );
    assert.equal(await rejected(), rejectedBefore + 2, 'both counted as rejected');
  });
});

describe('Slack pages', () => {
  test('one root per group in the severity channel; changes as thread replies and updates; redelivery acts once', async () => {
    const groupKey = '{}:{alertname="SLOBurnRate1h"}';
    const first = amPayload(groupKey, [
      {
        alertname: 'SLOBurnRate1h',
        severity: 'P2',
        labels: { slo: 'availability' },
        summary: 'availability burning 20x',
      },
    ]);
    const res = await h.post('/webhooks/alertmanager', first);
    assert.equal(res.status, 200);
    assert.equal(res.body.new_events, 1);
    const page = await waitUntil(
      async () =>
        (
          await h.db.pool.query(`SELECT * FROM controlroom.slack_pages WHERE group_key = $1 AND ts IS NOT NULL`, [
            groupKey,
          ])
        ).rows[0],
      10_000,
      'root'
    );
    assert.equal(page.channel, '#controlroom-alerts');
    const roots = rootsFor(page.id);
    assert.equal(roots.length, 1);
    assert.equal(roots[0]!.args.channel, '#controlroom-alerts');
    assert.match(String(roots[0]!.args.text), /FIRING:1 \[P2\] SLOBurnRate1h \(availability\)/);
    const actions = (roots[0]!.args.blocks as Array<{ type: string; elements?: Array<{ action_id: string }> }>).find(
      (b) => b.type === 'actions'
    );
    assert.deepEqual(
      actions?.elements?.map((e) => e.action_id),
      ['page_ack', 'page_resolve']
    );

    const again = await h.post('/webhooks/alertmanager', first);
    assert.deepEqual([again.status, again.body.new_events, again.body.duplicates], [200, 0, 1]);

    const second = amPayload(groupKey, [
      {
        alertname: 'SLOBurnRate1h',
        severity: 'P2',
        labels: { slo: 'availability' },
        summary: 'availability burning 20x',
      },
      {
        alertname: 'SLOBurnRate1h',
        severity: 'P2',
        labels: { slo: 'quote_latency' },
        summary: 'quote latency burning 16x',
      },
    ]);
    assert.equal((await h.post('/webhooks/alertmanager', second)).body.new_events, 1);
    const reply = await h.slack.waitFor(
      (c) =>
        c.method === 'chat.postMessage' &&
        c.args.thread_ts === page.ts &&
        /quote latency burning/.test(String(c.args.text))
    );
    assert.equal(reply.args.channel, channelId('#controlroom-alerts'));
    await h.slack.waitFor(
      (c) => c.method === 'chat.update' && c.args.ts === page.ts && /FIRING:2/.test(String(c.args.text))
    );

    const resolved = amPayload(groupKey, [
      {
        alertname: 'SLOBurnRate1h',
        severity: 'P2',
        status: 'resolved',
        labels: { slo: 'availability' },
        summary: 'availability burning 20x',
      },
      {
        alertname: 'SLOBurnRate1h',
        severity: 'P2',
        status: 'resolved',
        labels: { slo: 'quote_latency' },
        summary: 'quote latency burning 16x',
      },
    ]);
    assert.equal((await h.post('/webhooks/alertmanager', resolved)).body.new_events, 2);
    const update = await h.slack.waitFor(
      (c) => c.method === 'chat.update' && c.args.ts === page.ts && /RESOLVED/.test(String(c.args.text))
    );
    assert.ok(!JSON.stringify(update.args.blocks).includes('page_ack'), 'no buttons once resolved');
    assert.equal(rootsFor(page.id).length, 1, 'never a second root for the group');
    // The worker writes the audit entry after Slack answered the update, so it may land a moment later.
    const audited = await waitUntil(
      async () => {
        const { rows } = await h.db.pool.query(`SELECT action FROM audit_log WHERE target = $1 ORDER BY id`, [
          `slack_pages/${page.id}`,
        ]);
        return rows.length >= 3 ? rows : null;
      },
      10_000,
      'the update audit entries'
    );
    assert.deepEqual(
      audited.map((r) => r.action),
      ['slack.page_posted', 'slack.page_updated', 'slack.page_updated']
    );
    await waitUntil(
      async () =>
        (await count(
          `SELECT count(*) AS n FROM controlroom.alert_events WHERE group_key = $1 AND processed_at IS NULL`,
          [groupKey]
        )) === 0,
      10_000,
      'every event processed'
    );
  });

  test('a Slack outage delays the page but loses nothing and pages once', async () => {
    h.slack.failNext(2, 500, { method: 'chat.postMessage' });
    h.slack.failNext(1, 429, { method: 'chat.postMessage', retryAfter: 1 });
    const groupKey = '{}:{alertname="RegionDown"}';
    await h.post(
      '/webhooks/alertmanager',
      amPayload(groupKey, [{ alertname: 'RegionDown', severity: 'P3', labels: { region: 'us-west-2' } }])
    );
    const page = await waitUntil(
      async () =>
        (
          await h.db.pool.query(`SELECT * FROM controlroom.slack_pages WHERE group_key = $1 AND ts IS NOT NULL`, [
            groupKey,
          ])
        ).rows[0],
      30_000,
      'root after outage'
    );
    assert.equal(rootsFor(page.id).length, 1);
    assert.ok(h.slack.calls.filter((c) => c.method === 'chat.postMessage' && c.status !== 200).length >= 3);
  });
});

describe('Grafana webhook', () => {
  const sign = (body: string, ts: string) => createHmac('sha256', GRAFANA_HMAC).update(`${ts}:${body}`).digest('hex');
  const grafanaBody = JSON.stringify({
    ...amPayload('grafana-group', [{ alertname: 'High quote latency', severity: 'P3' }]),
    version: '1',
    orgId: 1,
  });

  test('accepts a signed notification and refuses a forged or stale one', async () => {
    const now = String(Math.floor(Date.now() / 1000));
    const headers = (signature: string, ts: string) => ({
      authorization: `Bearer ${GRAFANA_TOKEN}`,
      'x-grafana-alerting-signature': signature,
      'x-grafana-alerting-signature-timestamp': ts,
    });
    const forged = await h.post(
      '/webhooks/grafana',
      grafanaBody,
      headers(sign(grafanaBody.replace('P3', 'P1'), now), now)
    );
    assert.equal(forged.status, 401);
    assert.equal(forged.body.error, 'signature does not match the body');
    const stale = String(Number(now) - 3600);
    assert.equal(
      (await h.post('/webhooks/grafana', grafanaBody, headers(sign(grafanaBody, stale), stale))).status,
      401
    );
    assert.equal(await count(`SELECT count(*) AS n FROM controlroom.alert_notifications WHERE source = 'grafana'`), 0);
    const ok = await h.post('/webhooks/grafana', grafanaBody, headers(sign(grafanaBody, now), now));
    assert.equal(ok.status, 200);
    assert.equal(ok.body.new_events, 1);
  });
});

describe('acknowledge, resolve and escalation', () => {
  const interact = (pageId: string, action: string, options: { secret?: string; ts?: number } = {}) =>
    pressButton(h.base, pageId, action, options);
  const pageFor = (groupKey: string) =>
    waitUntil(
      async () =>
        (
          await h.db.pool.query(`SELECT * FROM controlroom.slack_pages WHERE group_key = $1 AND ts IS NOT NULL`, [
            groupKey,
          ])
        ).rows[0],
      10_000,
      'page'
    );

  test('a signed Acknowledge stops the escalation; forged or replayed presses change nothing', async () => {
    const groupKey = '{}:{alertname="ActiveRegionDown"}';
    await h.post(
      '/webhooks/alertmanager',
      amPayload(groupKey, [{ alertname: 'ActiveRegionDown', severity: 'P1', labels: { region: 'us-east-1' } }])
    );
    const page = await pageFor(groupKey);
    assert.equal(page.channel, '#controlroom-pages');
    assert.equal((await interact(page.id, ACK_ACTION, { secret: 'wrong-secret-000000000' })).status, 401);
    assert.equal((await interact(page.id, ACK_ACTION, { ts: Math.floor(Date.now() / 1000) - 600 })).status, 401);
    assert.equal(
      (await h.db.pool.query(`SELECT state FROM controlroom.slack_pages WHERE id = $1`, [page.id])).rows[0].state,
      'firing'
    );

    assert.equal((await interact(page.id, ACK_ACTION)).status, 200);
    assert.equal((await interact(page.id, ACK_ACTION)).status, 200); // a double click acts once
    await h.slack.waitFor(
      (c) =>
        c.method === 'chat.update' &&
        c.args.ts === page.ts &&
        JSON.stringify(c.args.blocks).includes('Acknowledged by @oncall.ana')
    );
    await h.slack.waitFor((c) => c.args.thread_ts === page.ts && c.args.text === 'Acknowledged by @oncall.ana.');
    const acks = await h.db.pool.query(
      `SELECT actor, action FROM audit_log WHERE target = $1 AND action = 'slack.page_acknowledged'`,
      [`slack_pages/${page.id}`]
    );
    assert.deepEqual(acks.rows, [{ actor: 'slack:U123', action: 'slack.page_acknowledged' }]);
    await new Promise((r) => setTimeout(r, 3_000)); // past the 2 s escalation delay
    assert.equal(
      h.slack
        .ok('chat.postMessage')
        .filter((c) => c.args.channel === '#controlroom-escalations' && /ActiveRegionDown/.test(String(c.args.text)))
        .length,
      0
    );
  });

  test('an unacknowledged P1 escalates once after the delay', async () => {
    const groupKey = '{}:{alertname="SLOBurnRate6h"}';
    await h.post(
      '/webhooks/alertmanager',
      amPayload(groupKey, [{ alertname: 'SLOBurnRate6h', severity: 'P1', labels: { slo: 'agent_success' } }])
    );
    const page = await pageFor(groupKey);
    const escalation = await h.slack.waitFor(
      (c) => c.args.channel === '#controlroom-escalations' && /SLOBurnRate6h/.test(String(c.args.text)),
      15_000
    );
    assert.match(String(escalation.args.text), /^<!here> P1 page unacknowledged/);
    await h.slack.waitFor(
      (c) => c.args.thread_ts === page.ts && /^Escalated to #controlroom-escalations/.test(String(c.args.text))
    );
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(
      h.slack
        .ok('chat.postMessage')
        .filter((c) => c.args.channel === '#controlroom-escalations' && /SLOBurnRate6h/.test(String(c.args.text)))
        .length,
      1
    );
  });
});

describe('overage tasks', () => {
  test('usage alerts create one notify_ops task per company, feature, threshold and period', async () => {
    const companyId = await insertCompany(h.db.pool, 'Overage Freight', 'pro');
    // November's quotes; the alerts started in November, so that is the period they report.
    await h.db.pool.query(
      `INSERT INTO usage_events (company_id, feature_key, qty, occurred_at) VALUES ($1, 'rates', 460, '2026-11-19T10:00:00Z')`,
      [companyId]
    );
    const usage = (alertname: string, startsAt: string) =>
      amPayload(`{}:{alertname="${alertname}",company_id="${companyId}"}`, [
        {
          alertname,
          severity: 'P3',
          labels: {
            company_id: companyId,
            feature: 'rates',
            threshold: alertname === 'UsageAbove80Percent' ? '80' : '90',
          },
          startsAt,
        },
      ]);
    await h.post('/webhooks/alertmanager', usage('UsageAbove80Percent', '2026-11-20T10:00:00Z'));
    await h.post('/webhooks/alertmanager', usage('UsageAbove80Percent', '2026-11-20T10:00:00Z')); // redelivered
    await h.post('/webhooks/alertmanager', usage('UsageAbove80Percent', '2026-11-21T08:00:00Z')); // flapped, same month
    await h.post('/webhooks/alertmanager', usage('UsageAbove90Percent', '2026-11-22T08:00:00Z'));
    const tasks = await waitUntil(async () => {
      const r = await h.db.pool.query(
        // By threshold, not id: the 80% and 90% alerts are two groups, whose jobs run independently
        // (either may create its task first).
        `SELECT payload FROM agent_tasks WHERE fn_name = 'notify_ops' AND company_id = $1
          ORDER BY (payload->>'threshold')::int, id`,
        [companyId]
      );
      const pending = await count(
        `SELECT count(*) AS n FROM controlroom.alert_events WHERE labels->>'company_id' = $1 AND processed_at IS NULL`,
        [companyId]
      );
      return pending === 0 && r.rows.length >= 2 ? r.rows : null;
    });
    assert.equal(tasks.length, 2);
    assert.deepEqual(
      tasks.map((t) => [
        t.payload.type,
        t.payload.threshold,
        t.payload.feature,
        t.payload.period,
        t.payload.period_start,
        t.payload.limit,
        t.payload.hard_limit,
        t.payload.company_name,
        t.payload.source,
      ]),
      [
        // limit: the included amount (pro rates: 500 of a 1000 hard limit) the thresholds are measured against
        ['limit_breach', 80, 'rates', 'month', '2026-11-01', 500, 1000, 'Overage Freight', 'alert'],
        ['limit_breach', 90, 'rates', 'month', '2026-11-01', 500, 1000, 'Overage Freight', 'alert'],
      ]
    );
    assert.deepEqual([tasks[1].payload.used, tasks[1].payload.value, tasks[1].payload.overage], [460, 0.92, 0]);
    assert.equal(
      await count(
        `SELECT count(*) AS n FROM audit_log WHERE action = 'overage.notify_ops_created' AND company_id = $1`,
        [companyId]
      ),
      2
    );
  });
});

test('the token is only accepted on its own endpoint', async () => {
  const res = await h.post('/webhooks/grafana', amPayload('x', [{ alertname: 'X' }]), {
    authorization: `Bearer ${AM_TOKEN}`,
  });
  assert.equal(res.status, 401);
});

test('the webhook answers alike on its exact path (answered ahead of Express) and on the spellings Express matches', async () => {
  // The exact path goes to the direct route (core/direct-routes.ts); the others through Express's router.
  const spellings = [
    '/webhooks/alertmanager',
    '/webhooks/alertmanager/',
    '/webhooks/Alertmanager',
    '/webhooks/alertmanager?from=am',
  ];
  const answers = [];
  for (const [n, path] of spellings.entries()) {
    const body = amPayload(`spelling-${n}`, [{ alertname: 'Spelled', severity: 'P3' }]);
    const first = await h.post(path, body);
    const again = await h.post(path, body);
    answers.push({
      unauthenticated: await h.post(path, body, { authorization: '' }),
      notJson: await h.post(path, '{"version": "4",', {}),
      wrongVersion: await h.post(path, { ...body, version: '3' }),
      tooLarge: await h.post(path, `"${'x'.repeat(5 * 1024 * 1024)}"`),
      stored: { status: first.status, new_events: first.body.new_events, duplicates: first.body.duplicates },
      redelivered: { status: again.status, new_events: again.body.new_events, duplicates: again.body.duplicates },
    });
  }
  assert.deepEqual(answers[0]!.stored, { status: 200, new_events: 1, duplicates: 0 });
  assert.deepEqual(answers[0]!.redelivered, { status: 200, new_events: 0, duplicates: 1 });
  assert.equal(answers[0]!.unauthenticated.status, 401);
  assert.equal(answers[0]!.tooLarge.status, 413);
  for (const [n, answer] of answers.entries()) assert.deepEqual(answer, answers[0], spellings[n]);
  assert.equal(
    await count(`SELECT count(*) AS n FROM controlroom.alert_notifications WHERE group_key LIKE 'spelling-%'`),
    spellings.length * 2
  );
});

test('a job held by this instance when it crashed resumes on restart, not hours later', async () => {
  const groupKey = '{}:{alertname="CrashTest"}';
  // Stop the workers, then leave the group's job locked by worker 0 as a kill -9 mid-job would.
  await h.services.worker.stop();
  await h.post('/webhooks/alertmanager', amPayload(groupKey, [{ alertname: 'CrashTest', severity: 'P3' }]));
  const locked = await h.db.pool.query(
    `UPDATE graphile_worker._private_jobs SET locked_at = now(), locked_by = $1
      WHERE key = $2 RETURNING id`,
    [h.services.worker.workerIds[0], `alert_group:alertmanager:${groupKey}`]
  );
  assert.equal(locked.rowCount, 1);
  await h.restart();
  const page = await waitUntil(
    async () =>
      (
        await h.db.pool.query(`SELECT * FROM controlroom.slack_pages WHERE group_key = $1 AND ts IS NOT NULL`, [
          groupKey,
        ])
      ).rows[0],
    15_000,
    'page after restart'
  );
  assert.equal(rootsFor(page.id).length, 1);
});
