import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { incidentSilenced, incidentsResponse, SILENCE_MAX_MINUTES } from '@controlroom/contract';
import type { SlackCall } from '../../testing/fake-slack.ts';
import { startAlertmanager } from '../../testing/prometheus-stack.ts';
import { freePort } from '../../testing/postgres.ts';
import { AM_TOKEN, startReceiverHarness, waitUntil, type ReceiverHarness } from '../../testing/receiver-harness.ts';
import { ALERT_GROUP_TASK } from '../tasks.ts';
import type { AlertmanagerSilence } from './silences.ts';

/**
 * "Silence for…" against a REAL Alertmanager: alerts are posted to Alertmanager, which groups them and sends
 * them to the service's receiver (bearer token as in production); the silence the API creates is read back
 * from Alertmanager's v2 API, and Alertmanager suppresses the alert it matches.
 */
const SECRET = 'controlroom-api-secret-0123456789';
let h: ReceiverHarness;
let am: { url: string; stop(): Promise<void> } | null = null;
let amUrl: string;

const as = (role: string, login = 'ana') => ({
  'x-controlroom-secret': SECRET,
  'x-grafana-context': JSON.stringify({ UserID: 7, OrgID: 1, Login: login, OrgRole: role, IsGrafanaAdmin: false }),
});
async function silence(incidentId: string, body: unknown, headers: Record<string, string> = as('Editor')) {
  const res = await fetch(`${h.base}/api/incidents/${incidentId}/silence`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, replayed: res.headers.get('idempotent-replayed'), body: (await res.json()) as any };
}
async function amGet<T>(path: string): Promise<T> {
  const res = await fetch(`${amUrl}${path}`);
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  return (await res.json()) as T;
}
const silencesWithComment = async (comment: string) =>
  (await amGet<AlertmanagerSilence[]>('/api/v2/silences')).filter((s) => s.comment === comment);

async function settle() {
  await waitUntil(
    async () => {
      const { rows } = await h.db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE task_identifier = ANY($1::text[]) AND attempts < max_attempts`,
        [[ALERT_GROUP_TASK, 'slack_page_refresh']]
      );
      return rows[0]!.n === 0;
    },
    60_000,
    'the queue to settle'
  );
}

/** Posts an alert to Alertmanager and waits until the receiver has its incident and Slack page. */
async function fireThroughAlertmanager(labels: Record<string, string>) {
  const res = await fetch(`${amUrl}/api/v2/alerts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify([{ labels, annotations: { summary: `${labels.alertname} in the test` } }]),
  });
  assert.equal(res.status, 200, await res.text());
  const incident = await waitUntil(
    async () =>
      (
        await h.db.pool.query<{ id: string; group_key: string }>(
          `SELECT id, group_key FROM controlroom.incidents WHERE alertnames @> ARRAY[$1]`,
          [labels.alertname]
        )
      ).rows[0],
    60_000,
    'the incident Alertmanager sent'
  );
  const page = await waitUntil(
    async () =>
      (
        await h.db.pool.query<{ ts: string }>(
          `SELECT ts FROM controlroom.slack_pages WHERE group_key = $1 AND ts IS NOT NULL`,
          [incident.group_key]
        )
      ).rows[0],
    60_000,
    'the page'
  );
  await settle();
  return { incidentId: String(incident.id), threadTs: page.ts };
}

const auditOf = async (incidentId: string) =>
  (
    await h.db.pool.query<{ actor: string; payload: Record<string, unknown> }>(
      `SELECT actor, payload FROM audit_log WHERE target = $1 AND action = 'incident.silenced' ORDER BY id`,
      [`incidents/${incidentId}`]
    )
  ).rows;

before(async () => {
  const amPort = await freePort();
  amUrl = `http://127.0.0.1:${amPort}`;
  h = await startReceiverHarness({
    CONTROLROOM_AUTH: 'shared-secret',
    CONTROLROOM_API_SECRET: SECRET,
    ALERTMANAGER_URL: amUrl,
  });
  am = await startAlertmanager({
    webhookUrl: `${h.base}/webhooks/alertmanager`,
    webhookToken: AM_TOKEN,
    port: amPort,
  });
});
after(async () => {
  await am?.stop();
  await h.stop();
});

describe('POST /api/incidents/:id/silence', () => {
  const labels = { alertname: 'QuoteLatencyHigh', severity: 'P2', slo: 'quote-latency' };
  let incidentId: string;
  let threadTs: string;

  test('bad input is a 4xx naming the problem, and nothing is written', async () => {
    ({ incidentId, threadTs } = await fireThroughAlertmanager(labels));
    const cases: Array<[unknown, number, RegExp, Record<string, string>?]> = [
      [{ durationMinutes: 60 }, 400, /reason.*required/],
      [{ durationMinutes: 60, reason: '   ' }, 400, /reason.*required/],
      [{ reason: 'deploying' }, 400, /exactly one of durationMinutes or endsAt/],
      [{ durationMinutes: 60, endsAt: '2030-01-01T00:00:00Z', reason: 'x' }, 400, /exactly one/],
      [{ durationMinutes: 0, reason: 'x' }, 400, /durationMinutes.*at least 1 minute/],
      [{ durationMinutes: SILENCE_MAX_MINUTES + 1, reason: 'x' }, 400, /durationMinutes.*at most 10080 minutes/],
      [{ durationMinutes: 1.5, reason: 'x' }, 400, /whole number/],
      [{ endsAt: '2020-01-01T00:00:00Z', reason: 'x' }, 400, /endsAt .* is not in the future/],
      [{ endsAt: new Date(Date.now() + 8 * 86_400_000).toISOString(), reason: 'x' }, 400, /at most 7 days ahead/],
      [{ endsAt: 'tomorrow', reason: 'x' }, 400, /endsAt.*ISO 8601/],
      [{ durationMinutes: 60, reason: 'x', matchers: {} }, 400, /matchers/],
      [{ durationMinutes: 60, reason: 'x' }, 403, /Editor role required; vic is Viewer/, as('Viewer', 'vic')],
    ];
    for (const [body, status, message, headers] of cases) {
      const res = await silence(incidentId, body, headers);
      assert.equal(res.status, status, `${JSON.stringify(body)} -> ${JSON.stringify(res.body)}`);
      assert.match(res.body.error, message, JSON.stringify(body));
    }
    const unknown = await silence('999999', { durationMinutes: 60, reason: 'x' });
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error, /no incident 999999/);
    const notAnId = await silence('abc', { durationMinutes: 60, reason: 'x' });
    assert.equal(notAnId.status, 400);

    const rows = await h.db.pool.query(`SELECT 1 FROM controlroom.incident_silences`);
    assert.equal(rows.rowCount, 0, 'no silence row for refused input');
    assert.deepEqual(await amGet('/api/v2/silences'), [], 'Alertmanager has no silence');
  });

  test('an Editor silences the group in Alertmanager, once: matchers, expiry, audit, one Slack reply, suppressed', async () => {
    const reason = 'Known slow carrier API, ticket OPS-42';
    const before = Date.now();
    const first = await silence(incidentId, { durationMinutes: 90, reason });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const made = incidentSilenced.parse(first.body);
    assert.equal(made.changed, true);
    // The group's common labels: the one alert's labels here, every one an equality matcher.
    assert.deepEqual(made.silence.matchers, labels);
    assert.equal(made.silence.by, 'grafana:ana');
    assert.equal(made.silence.active, true);
    const endsAt = Date.parse(made.silence.endsAt);
    assert.ok(endsAt >= before + 90 * 60_000 && endsAt <= Date.now() + 90 * 60_000, made.silence.endsAt);
    assert.deepEqual(
      made.incident.silences.map((s) => s.silenceId),
      [made.silence.silenceId]
    );

    // What Alertmanager holds: exactly this silence.
    const stored = await amGet<AlertmanagerSilence>(`/api/v2/silence/${made.silence.silenceId}`);
    assert.equal(stored.status.state, 'active');
    assert.equal(stored.createdBy, 'grafana:ana');
    assert.equal(stored.comment, reason);
    assert.equal(Date.parse(stored.endsAt), endsAt);
    assert.deepEqual(
      stored.matchers
        .map((m) => ({ name: m.name, value: m.value, isRegex: m.isRegex, isEqual: m.isEqual }))
        .sort((a, b) => a.name.localeCompare(b.name)),
      Object.entries(labels)
        .map(([name, value]) => ({ name, value, isRegex: false, isEqual: true }))
        .sort((a, b) => a.name.localeCompare(b.name))
    );

    // The same request again, and twice at once: the same silence, nothing new anywhere.
    const again = await silence(incidentId, { durationMinutes: 90, reason });
    assert.equal(again.status, 200);
    assert.equal(again.replayed, 'true');
    assert.equal(again.body.changed, false);
    assert.equal(again.body.silence.silenceId, made.silence.silenceId);
    const keyed = { ...as('Editor'), 'idempotency-key': 'dialog-7f3a' };
    const racing = await Promise.all([
      silence(incidentId, { durationMinutes: 30, reason: 'double click' }, keyed),
      silence(incidentId, { durationMinutes: 30, reason: 'double click' }, keyed),
    ]);
    assert.deepEqual(racing.map((r) => r.status).sort(), [200, 201]);
    assert.equal(racing[0]!.body.silence.silenceId, racing[1]!.body.silence.silenceId);
    assert.equal((await silencesWithComment(reason)).length, 1);
    assert.equal((await silencesWithComment('double click')).length, 1);
    const reused = await silence(incidentId, { durationMinutes: 30, reason: 'another reason' }, keyed);
    assert.equal(reused.status, 422);

    // Alertmanager suppresses the alert the silence matches.
    const alert = await waitUntil(
      async () => {
        const alerts = await amGet<Array<{ status: { state: string; silencedBy: string[] } }>>(
          `/api/v2/alerts?filter=${encodeURIComponent(`alertname="${labels.alertname}"`)}`
        );
        return alerts[0]?.status.state === 'suppressed' ? alerts[0] : null;
      },
      20_000,
      'the alert to be suppressed'
    );
    assert.ok(alert.status.silencedBy.includes(made.silence.silenceId));

    const audits = await auditOf(incidentId);
    assert.equal(audits.length, 2, 'one audit entry per silence made (the 90-minute one and the keyed one)');
    assert.equal(audits[0]!.actor, 'grafana:ana');
    assert.deepEqual(
      [audits[0]!.payload.silence_id, audits[0]!.payload.reason, audits[0]!.payload.role, audits[0]!.payload.adopted],
      [made.silence.silenceId, reason, 'Editor', false]
    );

    await settle();
    const replies = h.slack
      .ok('chat.postMessage')
      .filter(
        (c: SlackCall) => c.args.thread_ts === threadTs && /Silenced in Alertmanager until/.test(String(c.args.text))
      );
    assert.equal(replies.length, 2, 'one thread reply per silence made');
    assert.match(String(replies[0]!.args.text), /by grafana:ana .*Known slow carrier API, ticket OPS-42/);

    const listed = incidentsResponse.parse(
      await (await fetch(`${h.base}/api/incidents?limit=5`, { headers: as('Viewer', 'vic') })).json()
    );
    const shown = listed.incidents.find((i) => i.id === incidentId)!;
    assert.deepEqual(
      shown.silences.map((s) => s.reason),
      ['double click', reason]
    );
  });

  test('a crash after Alertmanager created the silence: the retry adopts it instead of making a second', async () => {
    const reason = 'retried after a crash';
    const endsAt = new Date(Date.now() + 3_600_000);
    // What a crashed attempt leaves: the pending row (expiry fixed) and, in Alertmanager, its silence.
    await h.db.pool.query(
      `INSERT INTO controlroom.incident_silences (incident_id, request_key, matchers, starts_at, ends_at, reason, created_by)
       VALUES ($1, 'key:crashed-1', $2, now(), $3, $4, 'grafana:ana')`,
      [incidentId, JSON.stringify(labels), endsAt, reason]
    );
    const res = await fetch(`${amUrl}/api/v2/silences`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        matchers: Object.entries(labels).map(([name, value]) => ({ name, value, isRegex: false, isEqual: true })),
        startsAt: new Date().toISOString(),
        endsAt: endsAt.toISOString(),
        createdBy: 'grafana:ana',
        comment: reason,
      }),
    });
    const { silenceID } = (await res.json()) as { silenceID: string };

    const retried = await silence(
      incidentId,
      { durationMinutes: 60, reason },
      { ...as('Editor'), 'idempotency-key': 'crashed-1' }
    );
    assert.equal(retried.status, 201, JSON.stringify(retried.body));
    assert.equal(retried.body.silence.silenceId, silenceID);
    assert.equal((await silencesWithComment(reason)).length, 1);
    assert.equal((await auditOf(incidentId)).at(-1)!.payload.adopted, true);
  });

  test('Alertmanager down: a 503 saying so, nothing shown or audited', async () => {
    await am!.stop();
    am = null;
    const auditsBefore = (await auditOf(incidentId)).length;
    const down = await silence(incidentId, { durationMinutes: 15, reason: 'while AM is down' });
    assert.equal(down.status, 503, JSON.stringify(down.body));
    assert.match(down.body.error, /Alertmanager at http:\/\/127\.0\.0\.1:\d+ did not answer .*nothing was silenced/);
    assert.equal((await auditOf(incidentId)).length, auditsBefore);
    const listed = incidentsResponse.parse(
      await (await fetch(`${h.base}/api/incidents`, { headers: as('Viewer') })).json()
    );
    assert.ok(
      !listed.incidents.find((i) => i.id === incidentId)!.silences.some((s) => s.reason === 'while AM is down')
    );
  });
});
