import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { incidentAcknowledged, incidentNoteCreated, incidentsResponse } from '@controlroom/contract';
import type { SlackCall } from '../../testing/fake-slack.ts';
import {
  amPayload,
  pressButton,
  startReceiverHarness,
  waitUntil,
  type ReceiverHarness,
} from '../../testing/receiver-harness.ts';
import { ACK_ACTION } from '../slack/messages.ts';
import { ALERT_GROUP_TASK } from '../tasks.ts';

/**
 * The Incidents page's actions against the whole service (real Postgres, the job queue, the official
 * Slack client pointed at the fake): what reaches the incident, the page, the audit log and Slack.
 */
const SECRET = 'controlroom-api-secret-0123456789';
const AM = '/webhooks/alertmanager';
const ESCALATION_CHANNEL = '#controlroom-escalations';
let h: ReceiverHarness;

const as = (role: string, login = 'ana') => ({
  'x-controlroom-secret': SECRET,
  'x-grafana-context': JSON.stringify({ UserID: 7, OrgID: 1, Login: login, OrgRole: role, IsGrafanaAdmin: false }),
});
async function call(method: string, path: string, headers: Record<string, string>, body?: unknown) {
  const res = await fetch(`${h.base}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

/** Waits until no alert group or page refresh job is left to run (the Slack replies are then all posted). */
async function settle(tasks = [ALERT_GROUP_TASK, 'slack_page_refresh']) {
  await waitUntil(
    async () => {
      const { rows } = await h.db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE task_identifier = ANY($1::text[]) AND attempts < max_attempts`,
        [tasks]
      );
      return rows[0]!.n === 0;
    },
    60_000,
    'the queue to settle'
  );
}

/** Fires an alert group and waits until its page is posted and its incident is open. */
async function fire(groupKey: string, alertname: string, severity: 'P1' | 'P2') {
  assert.equal((await h.post(AM, amPayload(groupKey, [{ alertname, severity }]))).status, 200);
  const page = await waitUntil(
    async () =>
      (
        await h.db.pool.query(`SELECT * FROM controlroom.slack_pages WHERE group_key = $1 AND ts IS NOT NULL`, [
          groupKey,
        ])
      ).rows[0],
    30_000,
    'the page'
  );
  const incident = await waitUntil(
    async () =>
      (await h.db.pool.query(`SELECT id FROM controlroom.incidents WHERE group_key = $1`, [groupKey])).rows[0],
    30_000,
    'the incident'
  );
  await settle();
  return { page, incidentId: String(incident.id) };
}

const repliesIn = (ts: string, pattern: RegExp) =>
  h.slack.ok('chat.postMessage').filter((c: SlackCall) => c.args.thread_ts === ts && pattern.test(String(c.args.text)));
const auditOf = async (incidentId: string) =>
  (
    await h.db.pool.query<{ actor: string; action: string; payload: Record<string, unknown> }>(
      `SELECT actor, action, payload FROM audit_log WHERE target = $1 AND actor LIKE 'grafana:%' ORDER BY id`,
      [`incidents/${incidentId}`]
    )
  ).rows;

before(async () => {
  h = await startReceiverHarness({ CONTROLROOM_AUTH: 'shared-secret', CONTROLROOM_API_SECRET: SECRET });
});
after(async () => h.stop());

describe('POST /api/incidents/:id/acknowledge', () => {
  test('an Editor acknowledges as the Slack button does: incident, page, escalation, audit, one thread reply', async () => {
    const { page, incidentId } = await fire('{}:{alertname="ActiveRegionDown"}', 'ActiveRegionDown', 'P1');
    const escalations = await h.db.pool.query(
      `SELECT 1 FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
        WHERE t.identifier = 'slack_escalate' AND j.payload->>'pageId' = $1`,
      [String(page.id)]
    );
    assert.equal(escalations.rowCount, 1, 'the P1 page has an escalation waiting');

    const viewer = await call('POST', `/api/incidents/${incidentId}/acknowledge`, as('Viewer', 'vic'));
    assert.equal(viewer.status, 403);
    assert.match(viewer.body.error, /Editor role required; vic is Viewer/);

    const first = await call('POST', `/api/incidents/${incidentId}/acknowledge`, as('Editor'));
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const acked = incidentAcknowledged.parse(first.body);
    assert.equal(acked.changed, true);
    assert.equal(acked.incident.state, 'acknowledged');
    assert.deepEqual(
      [acked.incident.acknowledgement?.by, acked.incident.acknowledgement?.via],
      ['grafana:ana', 'grafana']
    );
    assert.match(acked.incident.slackThreadUrl ?? '', /^https:\/\/slack\.com\/archives\/C[0-9A-F]+\/p\d+$/);

    const stored = await h.db.pool.query(`SELECT state, acked_by FROM controlroom.slack_pages WHERE id = $1`, [
      page.id,
    ]);
    assert.deepEqual(stored.rows[0], { state: 'acknowledged', acked_by: 'grafana:ana' });

    // The escalation comes due now: it finds the page acknowledged and posts nothing.
    await h.db.pool.query(
      `UPDATE graphile_worker._private_jobs SET run_at = now()
        WHERE task_id = (SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'slack_escalate')`
    );
    await settle([ALERT_GROUP_TASK, 'slack_page_refresh', 'slack_escalate']);
    assert.equal(h.slack.ok('chat.postMessage').filter((c) => c.args.channel === ESCALATION_CHANNEL).length, 0);

    // Twice is a 200 that changes nothing: no second audit entry, no second reply.
    const second = await call('POST', `/api/incidents/${incidentId}/acknowledge`, as('Editor', 'bob'), {});
    assert.equal(second.status, 200);
    assert.equal(incidentAcknowledged.parse(second.body).changed, false);
    assert.equal(second.body.incident.acknowledgement.by, 'grafana:ana');
    // The Slack button after it changes nothing either (the page is no longer firing).
    assert.equal((await pressButton(h.base, String(page.id), ACK_ACTION)).status, 200);
    const still = await h.db.pool.query(`SELECT acked_by FROM controlroom.slack_pages WHERE id = $1`, [page.id]);
    assert.equal(still.rows[0].acked_by, 'grafana:ana');
    await settle();

    assert.deepEqual(
      repliesIn(page.ts, /Acknowledged/).map((c) => c.args.text),
      ['Acknowledged by grafana:ana in Grafana.']
    );
    const entries = await auditOf(incidentId);
    assert.deepEqual(
      entries.map((e) => [e.actor, e.action, e.payload.role, e.payload.slack_page]),
      [['grafana:ana', 'incident.acknowledged', 'Editor', String(page.id)]]
    );
  });

  test('a bad id is a 400, an unknown incident a 404, a body other than {} a 400; nothing is written', async () => {
    const bad = await call('POST', '/api/incidents/abc/acknowledge', as('Editor'));
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /invalid path: id must be an incident id/);
    const unknown = await call('POST', '/api/incidents/999999/acknowledge', as('Editor'));
    assert.deepEqual([unknown.status, unknown.body.error], [404, 'no incident 999999']);
    const { incidentId } = await fire('{}:{alertname="QuoteLatency"}', 'QuoteLatency', 'P2');
    const extra = await call('POST', `/api/incidents/${incidentId}/acknowledge`, as('Editor'), { force: true });
    assert.equal(extra.status, 400);
    assert.match(extra.body.error, /invalid request body/);
    assert.deepEqual(await auditOf(incidentId), []);
    const row = await h.db.pool.query(`SELECT acknowledged_at FROM controlroom.incidents WHERE id = $1`, [incidentId]);
    assert.equal(row.rows[0].acknowledged_at, null);
  });
});

describe('POST /api/incidents/:id/notes', () => {
  test('stores the note, audits it, lists it, and replies in the thread once', async () => {
    const { page, incidentId } = await fire('{}:{alertname="RatingErrors"}', 'RatingErrors', 'P2');
    const created = await call('POST', `/api/incidents/${incidentId}/notes`, as('Editor'), {
      text: '  Carrier API down, failing over  ',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const { note, incident } = incidentNoteCreated.parse(created.body);
    assert.deepEqual([note.text, note.by], ['Carrier API down, failing over', 'grafana:ana']);
    assert.deepEqual(
      incident.notes.map((n) => n.id),
      [note.id]
    );
    assert.equal(incident.state, 'unacknowledged', 'a note is not an acknowledgement');

    const listed = incidentsResponse.parse((await call('GET', '/api/incidents', as('Viewer'))).body);
    assert.deepEqual(
      listed.incidents.find((i) => i.id === incidentId)?.notes.map((n) => [n.text, n.by]),
      [['Carrier API down, failing over', 'grafana:ana']]
    );
    await settle();
    assert.deepEqual(
      repliesIn(page.ts, /^Note from/).map((c) => c.args.text),
      ['Note from grafana:ana: Carrier API down, failing over']
    );
    assert.deepEqual(
      (await auditOf(incidentId)).map((e) => [e.actor, e.action, e.payload.text, e.payload.note_id]),
      [['grafana:ana', 'incident.note_added', 'Carrier API down, failing over', note.id]]
    );
  });

  test('a Viewer is refused; empty, long or misspelt bodies are 400s; nothing is stored', async () => {
    const [{ id }] = (await h.db.pool.query(`SELECT id FROM controlroom.incidents ORDER BY id LIMIT 1`)).rows;
    const path = `/api/incidents/${id}/notes`;
    const viewer = await call('POST', path, as('Viewer', 'vic'), { text: 'hello' });
    assert.equal(viewer.status, 403);
    for (const [body, message] of [
      [{ text: '   ' }, /invalid request body: text must not be empty/],
      [{ text: 'x'.repeat(2001) }, /text must be at most 2000 characters/],
      [{ note: 'hi' }, /invalid request body/],
      [undefined, /invalid request body/],
    ] as const) {
      const res = await call('POST', path, as('Editor'), body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(res.body.error, message);
    }
    assert.equal((await call('POST', '/api/incidents/0/notes', as('Editor'), { text: 'hi' })).status, 400);
    assert.equal((await call('POST', '/api/incidents/424242/notes', as('Editor'), { text: 'hi' })).status, 404);
    const notes = await h.db.pool.query(
      `SELECT count(*)::int AS n FROM controlroom.incident_notes WHERE incident_id = $1`,
      [id]
    );
    assert.equal(notes.rows[0].n, 0);
  });
});
