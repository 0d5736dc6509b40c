import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { incidentsResponse, tasksResponse, type AgentTask, type Incident } from '@controlroom/contract';
import { Registry } from 'prom-client';
import { buildApp } from '../../cli/app.ts';
import { createAccessControl } from '../../core/access.ts';
import { audit } from '../../core/audit.ts';
import { loadConfig } from '../../cli/config.ts';
import { createLogger } from '../../core/logger.ts';
import { insertCompany } from '../../testing/companies.ts';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';
import { recordFreezeTriggers } from '../freeze/triggers.ts';
import { pendingEvents } from '../events.ts';
import { storeNotification } from '../receiver/inbox.ts';
import { ensureOverageTask } from '../receiver/overage.ts';
import { alertmanagerPayload } from '../receiver/payloads.ts';
import { amPayload, type TestAlert } from '../../testing/receiver-harness.ts';
import { incidentsApiRouter } from './routes.ts';
import { recordIncidentTimeline } from './timeline.ts';

const SECRET = 'controlroom-api-secret-0123456789';
let db: TestDatabase;
let server: Server;
let base: string;

const headers = (role: string | null): Record<string, string> =>
  role === null
    ? {}
    : {
        'x-controlroom-secret': SECRET,
        'x-grafana-context': JSON.stringify({
          UserID: 7,
          OrgID: 1,
          Login: 'oncall',
          OrgRole: role,
          IsGrafanaAdmin: false,
        }),
      };
const get = async (path: string, role: string | null = 'Viewer') => {
  const res = await fetch(`${base}${path}`, { headers: headers(role) });
  return { status: res.status, body: (await res.json()) as ApiBody };
};

/** The union of the two endpoints' answers and the error body, as the tests read them. */
interface ApiBody {
  incidents: Incident[];
  tasks: AgentTask[];
  nextCursor: string | null;
  error: string;
}

/** What the receiver's queue job does with a notification: store it, then the actions, then the timeline. */
async function receive(groupKey: string, alerts: TestAlert[], receivedAt: string) {
  const stored = await storeNotification(
    db.pool,
    'alertmanager',
    alertmanagerPayload.parse(amPayload(groupKey, alerts))
  );
  await db.pool.query(`UPDATE controlroom.alert_events SET received_at = $2 WHERE notification_id = $1`, [
    stored.notificationId,
    receivedAt,
  ]);
  const pending = await pendingEvents(db.pool, 'alertmanager', groupKey);
  await recordIncidentTimeline(db.pool, 'alertmanager', groupKey, { timeZone: 'UTC' });
  for (const event of pending) await ensureOverageTask(db.pool, event);
  await recordFreezeTriggers(db.pool, pending);
  await db.pool.query(`UPDATE controlroom.alert_events SET processed_at = now() WHERE id = ANY($1::bigint[])`, [
    pending.map((e) => e.id),
  ]);
}

let companyId: string;
before(async () => {
  db = await createTestDatabase();
  companyId = await insertCompany(db.pool, 'Acme Freight', 'starter');
  const hour = (h: number) => new Date(Date.now() - h * 3_600_000).toISOString();
  // 1: a P1 SLO page that froze releases, paged 6 h ago and still unacknowledged (past its 4 h).
  await receive(
    'g:budget',
    [
      {
        alertname: 'ErrorBudgetHalfSpent',
        severity: 'P1',
        labels: { slo: 'availability' },
        fingerprint: 'fp-budget',
        startsAt: hour(6),
      },
    ],
    hour(6)
  );
  // 2: a P3 usage alert that opened a notify_ops task, then resolved (the resolve acknowledges it).
  const usage = {
    alertname: 'UsageAbove80Percent',
    severity: 'P3',
    labels: { company_id: companyId, feature: 'rates' },
    fingerprint: 'fp-usage',
    startsAt: hour(3),
  };
  await receive('g:usage', [usage], hour(3));
  await receive('g:usage', [{ ...usage, status: 'resolved' }], hour(1));
  // 3: a P2 page acknowledged in Slack: its page steps come from the audit log.
  await receive(
    'g:ack',
    [{ alertname: 'QuoteLatency', severity: 'P2', fingerprint: 'fp-ack', startsAt: hour(2) }],
    hour(2)
  );
  const page = await db.pool.query<{ id: string }>(
    `INSERT INTO controlroom.slack_pages (source, group_key, channel, severity, ts) VALUES ('alertmanager', 'g:ack', '#controlroom-alerts', 'P2', '1700.0001') RETURNING id`
  );
  await audit(db.pool, {
    actor: 'controlroom:receiver',
    action: 'slack.page_posted',
    target: `slack_pages/${page.rows[0]!.id}`,
    payload: { channel: '#controlroom-alerts', ts: '1700.0001' },
  });
  await db.pool.query(
    `UPDATE controlroom.incidents SET acknowledged_at = now(), acknowledged_by = '@ana', acknowledged_via = 'slack_button' WHERE group_key = 'g:ack'`
  );
  // A task of the TMS's own, never listed.
  await db.pool.query(`INSERT INTO agent_tasks (fn_name, status) VALUES ('send_quote_email', 'queued')`);

  const access = createAccessControl(loadConfig({ CONTROLROOM_AUTH: 'shared-secret', CONTROLROOM_API_SECRET: SECRET }));
  const app = buildApp({
    pool: db.pool,
    registry: new Registry(),
    logger: createLogger('silent'),
    access,
    api: [incidentsApiRouter(db.pool)],
  });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await db.drop();
});

describe('GET /api/incidents', () => {
  test('lists incidents newest first with their alerts, pages, acknowledgement, resolution, breaches and actions', async () => {
    const { status, body } = await get('/api/incidents');
    assert.equal(status, 200);
    const parsed = incidentsResponse.parse(body);
    assert.deepEqual(
      parsed.incidents.map((i) => i.groupKey),
      ['g:ack', 'g:usage', 'g:budget']
    );
    assert.equal(parsed.nextCursor, null);
    const [ack, usage, budget] = parsed.incidents as [Incident, Incident, Incident];

    assert.deepEqual(
      [budget.severity, budget.state, budget.pastSla, budget.breaches],
      ['P1', 'unacknowledged', true, ['acknowledge', 'resolve']]
    );
    assert.equal(Date.parse(budget.acknowledgeBy) - Date.parse(budget.pagedAt), 4 * 3_600_000);
    assert.deepEqual(
      budget.actions.freezeTriggers.map((t) => [t.alertname, t.slo, t.firing]),
      [['ErrorBudgetHalfSpent', 'availability', true]]
    );
    assert.deepEqual(budget.actions.tasks, []);

    assert.deepEqual([usage.severity, usage.state, usage.pastSla, usage.breaches], ['P3', 'resolved', false, []]);
    assert.deepEqual(
      [usage.acknowledgement?.via, usage.resolution?.via, usage.acknowledgement?.at],
      ['alert_resolved', 'alert_resolved', usage.resolution?.at]
    );
    assert.deepEqual(
      usage.alerts.map((a) => a.status),
      ['firing', 'resolved']
    );
    assert.equal(usage.actions.tasks.length, 1);
    const [task] = usage.actions.tasks as [AgentTask];
    assert.deepEqual([task.fnName, task.companyId, task.payload.type], ['notify_ops', companyId, 'limit_breach']);

    assert.deepEqual(
      [ack.state, ack.acknowledgement?.by, ack.acknowledgement?.via, ack.resolution],
      ['acknowledged', '@ana', 'slack_button', null]
    );
    assert.deepEqual(
      ack.pages.map((p) => [p.action, p.channel, p.ts]),
      [['slack.page_posted', '#controlroom-alerts', '1700.0001']]
    );
    assert.equal(ack.slaTimeZone, 'UTC');
  });

  test('filters by severity and state; pages with a limit and a cursor', async () => {
    const groups = async (q: string) => (await get(`/api/incidents${q}`)).body.incidents.map((i) => i.groupKey);
    assert.deepEqual(await groups('?severity=P1'), ['g:budget']);
    assert.deepEqual(await groups('?state=open'), ['g:ack', 'g:budget']);
    assert.deepEqual(await groups('?state=unacknowledged'), ['g:budget']);
    assert.deepEqual(await groups('?state=acknowledged'), ['g:ack']);
    assert.deepEqual(await groups('?state=resolved&severity=P3'), ['g:usage']);
    assert.deepEqual(await groups('?state=resolved&severity=P1'), []);
    const first = await get('/api/incidents?limit=2');
    assert.deepEqual(
      first.body.incidents.map((i) => i.groupKey),
      ['g:ack', 'g:usage']
    );
    assert.ok(first.body.nextCursor);
    const second = await get(`/api/incidents?limit=2&cursor=${first.body.nextCursor}`);
    assert.deepEqual([second.body.incidents.map((i) => i.groupKey), second.body.nextCursor], [['g:budget'], null]);
  });

  test('bad filters are a 400 saying which parameter and why', async () => {
    const cases: Array<[string, RegExp]> = [
      ['?severity=P4', /^invalid query: severity must be one of "P1", "P2", "P3"$/],
      ['?state=closed', /^invalid query: state must be one of "open", "unacknowledged", "acknowledged", "resolved"$/],
      ['?limit=0', /^invalid query: limit must be at least 1$/],
      ['?limit=501', /^invalid query: limit must be at most 500$/],
      ['?limit=ten', /^invalid query: limit must be a number$/],
      ['?cursor=abc', /^invalid query: cursor must be the nextCursor of a previous page$/],
      ['?severty=P1', /^invalid query: unknown parameter 'severty' \(known: severity, state, limit, cursor\)$/],
      ['?severity=P1&severity=P2', /^invalid query: severity must be given once$/],
    ];
    for (const [q, message] of cases) {
      const { status, body } = await get(`/api/incidents${q}`);
      assert.equal(status, 400, q);
      assert.match(body.error, message, q);
    }
  });

  test('a Viewer may read; without Grafana credentials it is a 401', async () => {
    assert.equal((await get('/api/incidents', 'Viewer')).status, 200);
    assert.equal((await get('/api/incidents', 'Admin')).status, 200);
    assert.equal((await get('/api/incidents', null)).status, 401);
    assert.equal((await get('/api/tasks', null)).status, 401);
    const forged = await fetch(`${base}/api/incidents`, {
      headers: { ...headers('Viewer'), 'x-controlroom-secret': 'not-the-secret-0123456789abcdefghij' },
    });
    assert.equal(forged.status, 401, "not through the app's proxy route");
  });
});

describe('GET /api/tasks', () => {
  test("lists the notify_ops tasks, newest first, never the TMS's own tasks", async () => {
    await db.pool.query(
      `INSERT INTO agent_tasks (fn_name, status, payload) VALUES ('notify_ops', 'success', '{"type":"manual"}'), ('bulk_rating', 'running', '{}')`
    );
    const { status, body } = await get('/api/tasks?fn_name=notify_ops');
    assert.equal(status, 200);
    const parsed = tasksResponse.parse(body);
    assert.deepEqual(
      parsed.tasks.map((t) => [t.fnName, t.status]),
      [
        ['notify_ops', 'success'],
        ['notify_ops', 'queued'],
      ]
    );
    assert.ok(parsed.tasks[0]!.completedAt, 'a finished task has its completion time');
    assert.equal(parsed.tasks[1]!.completedAt, null);
    assert.deepEqual(
      (await get('/api/tasks?fnName=notify_ops&status=queued')).body.tasks.map((t) => t.payload.type),
      ['limit_breach']
    );
    assert.deepEqual(
      (await get('/api/tasks')).body.tasks.map((t) => t.fnName),
      ['bulk_rating', 'notify_ops', 'notify_ops']
    );
    const paged = await get('/api/tasks?limit=1');
    const next = await get(`/api/tasks?limit=1&cursor=${paged.body.nextCursor}`);
    assert.deepEqual([paged.body.tasks[0]?.fnName, next.body.tasks[0]?.fnName], ['bulk_rating', 'notify_ops']);
  });

  test('an unknown task name or status is a 400 naming the known ones', async () => {
    const unknown = await get('/api/tasks?fn_name=send_quote_email');
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error, 'invalid query: fnName must be one of "notify_ops", "bulk_rating"');
    const status = await get('/api/tasks?fn_name=notify_ops&status=done');
    assert.equal(status.status, 400);
    assert.match(status.body.error, /^invalid query: status must be one of "queued", "running", "success", "failed"$/);
    assert.equal(
      (await get('/api/tasks?fn_name=notify_ops&fnName=notify_ops')).body.error,
      'invalid query: fnName must be given once'
    );
  });
});
