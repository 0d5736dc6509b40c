import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { parseMetrics, seriesKey } from '../../testing/prom-text.ts';
import {
  amPayload,
  pressButton,
  startReceiverHarness,
  waitUntil,
  type ReceiverHarness,
} from '../../testing/receiver-harness.ts';
import { ACK_ACTION } from '../slack/messages.ts';

let h: ReceiverHarness;
before(async () => {
  h = await startReceiverHarness();
});
after(async () => h.stop());

const incident = async (groupKey: string) =>
  (await h.db.pool.query(`SELECT * FROM controlroom.incidents WHERE group_key = $1 ORDER BY id`, [groupKey])).rows;
const metric = async (name: string, labels: Record<string, string>) => {
  await h.services.refresh();
  const text = await (await fetch(`${h.base}/metrics`)).text();
  return parseMetrics(text).get(seriesKey(name, labels));
};

test('through the webhook, the queue, the Slack button and a restart: paged, acknowledged, resolved, each once', async () => {
  const groupKey = '{}:{alertname="ActiveRegionDown"}';
  const firing = amPayload(groupKey, [
    { alertname: 'ActiveRegionDown', severity: 'P1', labels: { region: 'us-east-1' } },
  ]);
  assert.equal((await h.post('/webhooks/alertmanager', firing)).status, 200);
  // The incident is open before the page is posted, so the button on the page finds it.
  const page = await waitUntil(
    async () =>
      (
        await h.db.pool.query(`SELECT * FROM controlroom.slack_pages WHERE group_key = $1 AND ts IS NOT NULL`, [
          groupKey,
        ])
      ).rows[0],
    15_000,
    'page'
  );
  let [row] = await incident(groupKey);
  const received = (
    await h.db.pool.query(`SELECT min(received_at) AS at FROM controlroom.alert_events WHERE group_key = $1`, [
      groupKey,
    ])
  ).rows[0].at;
  assert.equal(
    new Date(row.paged_at).toISOString(),
    new Date(received).toISOString(),
    'paged when the notification arrived'
  );
  assert.equal(new Date(row.ack_due_at).getTime() - new Date(row.paged_at).getTime(), 4 * 3_600_000);
  assert.equal(await metric('controlroom_incidents_open', { severity: 'P1' }), 1);

  assert.equal((await pressButton(h.base, page.id, ACK_ACTION)).status, 200);
  assert.equal(
    (await pressButton(h.base, page.id, ACK_ACTION)).status,
    200,
    'a second press is accepted and changes nothing'
  );
  [row] = await incident(groupKey);
  const acked = (await h.db.pool.query(`SELECT acked_at FROM controlroom.slack_pages WHERE id = $1`, [page.id])).rows[0]
    .acked_at;
  assert.deepEqual([row.acknowledged_by, row.acknowledged_via], ['@oncall.ana', 'slack_button']);
  assert.equal(
    new Date(row.acknowledged_at).toISOString(),
    new Date(acked).toISOString(),
    'the same instant as the page'
  );

  // Restarted (as after a crash), then the same firing notification is redelivered and the group resolves.
  await h.restart();
  assert.equal((await h.post('/webhooks/alertmanager', firing)).body.new_events, 0);
  const resolved = amPayload(groupKey, [
    { alertname: 'ActiveRegionDown', severity: 'P1', status: 'resolved', labels: { region: 'us-east-1' } },
  ]);
  assert.equal((await h.post('/webhooks/alertmanager', resolved)).status, 200);
  await h.post('/webhooks/alertmanager', resolved);
  [row] = await waitUntil(
    async () => {
      const rows = await incident(groupKey);
      return rows[0]?.resolved_at ? rows : null;
    },
    15_000,
    'resolution'
  );
  assert.deepEqual(
    [(await incident(groupKey)).length, row.resolved_via, row.acknowledged_via],
    [1, 'alert_resolved', 'slack_button'],
    'one incident, the button still the acknowledgement'
  );

  // The metrics come from the rows: after the restart they count this incident once.
  assert.equal(await metric('controlroom_incident_time_to_acknowledge_seconds_count', { severity: 'P1' }), 1);
  assert.equal(await metric('controlroom_incident_time_to_resolve_seconds_count', { severity: 'P1' }), 1);
  assert.equal(await metric('controlroom_incident_time_to_resolve_seconds_bucket', { severity: 'P1', le: '300' }), 1);
  assert.equal(await metric('controlroom_incidents_open', { severity: 'P1' }), 0);
  assert.equal(await metric('controlroom_incident_sla_breaches_total', { severity: 'P1', stage: 'acknowledge' }), 0);
  const audits = await h.db.pool.query(`SELECT action FROM audit_log WHERE action LIKE 'incident.%' ORDER BY id`);
  assert.deepEqual(
    audits.rows.map((r) => r.action),
    ['incident.opened', 'incident.resolved']
  );
});
