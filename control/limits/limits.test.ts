import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { LimitRequestAnswer, LimitRequestList, METERED_FEATURES } from '@controlroom/contract';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { buildApp } from '../../cli/app.ts';
import { createAccessControl } from '../../core/access.ts';
import { createLogger } from '../../core/logger.ts';
import { METERS } from '../../core/plan-usage.ts';
import { insertCompany } from '../../testing/companies.ts';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';
import { limitRequestsRouter } from './routes.ts';

const API_SECRET = 'controlroom-api-secret-0123456789';
let db: TestDatabase;
let server: Server;
let base: string;
let pro: string;
let starter: string;
let enterprise: string;

const as = (role: string, login = `${role.toLowerCase()}.user`) => ({
  'x-controlroom-secret': API_SECRET,
  'x-grafana-context': JSON.stringify({ Login: login, OrgRole: role, UserID: 3, OrgID: 1 }),
});

async function ask(body: unknown, headers: Record<string, string> = as('Editor'), contentType = 'application/json') {
  const res = await fetch(`${base}/api/limits/requests`, {
    method: 'POST',
    headers: { 'content-type': contentType, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

const written = async () =>
  Number(
    (
      await db.pool.query(
        `SELECT (SELECT count(*) FROM controlroom.limit_increase_requests) + (SELECT count(*) FROM agent_tasks) + (SELECT count(*) FROM audit_log) AS n`
      )
    ).rows[0].n
  );

before(async () => {
  db = await createTestDatabase();
  const app = buildApp({
    pool: db.pool,
    registry: new Registry(),
    logger: createLogger('silent'),
    api: [limitRequestsRouter(db.pool)],
    access: createAccessControl({ CONTROLROOM_AUTH: 'shared-secret', CONTROLROOM_API_SECRET: API_SECRET }),
  });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  pro = await insertCompany(db.pool, 'Lakeshore Logistics', 'pro');
  starter = await insertCompany(db.pool, 'Tiny Freight', 'starter');
  enterprise = await insertCompany(db.pool, 'Summit Freight', 'enterprise');
  await db.pool.query(
    `INSERT INTO usage_events (company_id, feature_key, qty) SELECT $1, 'bulk_rating', 1 FROM generate_series(1, 10)`,
    [pro]
  );
});
after(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  await db?.drop();
});

describe('POST /api/limits/requests', () => {
  test("the contract's metered features are the product's meters", () => {
    assert.deepEqual([...METERED_FEATURES].sort(), Object.keys(METERS).sort());
  });

  test('an Editor asks for more bulk jobs: one audited notify_ops task of type limit_increase_request', async () => {
    const res = await ask({
      companyId: pro,
      feature: 'bulk_rating',
      requestedLimit: 25,
      reason: 'month-end repricing of our whole lane book',
    });
    assert.equal(res.status, 201);
    assert.equal(res.body.duplicate, false);
    const request = LimitRequestAnswer.parse(res.body).request;
    assert.deepEqual(
      [
        request.companyId,
        request.feature,
        request.unit,
        request.currentLimit,
        request.requestedLimit,
        request.requestedBy,
      ],
      [pro, 'bulk_rating', 'jobs', 10, 25, 'grafana:editor.user']
    );
    assert.deepEqual([res.body.upgrade.plan, res.body.upgrade.hardLimit], ['enterprise', -1]);

    const { rows: tasks } = await db.pool.query(
      `SELECT id, fn_name, status, payload FROM agent_tasks WHERE company_id = $1`,
      [pro]
    );
    assert.equal(tasks.length, 1);
    assert.equal(Number(tasks[0].id), request.agentTaskId);
    assert.deepEqual([tasks[0].fn_name, tasks[0].status], ['notify_ops', 'queued']);
    const p = tasks[0].payload;
    assert.deepEqual(
      [
        p.type,
        p.request_id,
        p.company_name,
        p.plan,
        p.feature,
        p.period,
        p.used,
        p.included,
        p.current_limit,
        p.requested_limit,
        p.reason,
        p.requested_by,
        p.upgrade.plan,
      ],
      [
        'limit_increase_request',
        request.id,
        'Lakeshore Logistics',
        'pro',
        'bulk_rating',
        'day',
        10,
        5,
        10,
        25,
        'month-end repricing of our whole lane book',
        'grafana:editor.user',
        'enterprise',
      ]
    );
    const { rows: audited } = await db.pool.query(
      `SELECT actor, action, target, company_id, payload FROM audit_log WHERE company_id = $1`,
      [pro]
    );
    assert.equal(audited.length, 1);
    assert.deepEqual(
      [audited[0].actor, audited[0].action, audited[0].target, audited[0].payload.agent_task_id],
      ['grafana:editor.user', 'limits.increase_requested', `limit_increase_requests/${request.id}`, request.agentTaskId]
    );

    const listed = await fetch(`${base}/api/limits/requests?companyId=${pro}`, { headers: as('Viewer') });
    assert.equal(listed.status, 200);
    assert.deepEqual(
      LimitRequestList.parse(await listed.json()).requests.map((r) => r.id),
      [request.id]
    );
    // The old query parameter name is still accepted.
    const old = await fetch(`${base}/api/limits/requests?company_id=${pro}`, { headers: as('Viewer') });
    assert.deepEqual(
      LimitRequestList.parse(await old.json()).requests.map((r) => r.id),
      [request.id]
    );
  });

  test('the same request again (a double click, a retry) answers with the first one and asks ops once; old snake_case names are accepted', async () => {
    const body = { company_id: pro, feature: 'rates', requested_limit: 5000, reason: 'peak season quoting' };
    const before = await written();
    const answers = await Promise.all(Array.from({ length: 5 }, () => ask(body)));
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, 200, 200, 200, 201]);
    assert.equal(new Set(answers.map((a) => a.body.request.id)).size, 1);
    assert.equal(answers.filter((a) => a.body.duplicate).length, 4);
    assert.equal(await written(), before + 3, 'one request row, one task, one audit entry');
    const again = await ask({ ...body, reason: 'asking again with other words' });
    assert.deepEqual(
      [again.status, again.body.duplicate, again.body.request.reason],
      [200, true, 'peak season quoting']
    );
  });

  test('a feature the plan does not include can be asked for too; the hint names the plan that includes it', async () => {
    const res = await ask({
      company_id: starter,
      feature: 'bulk_rating',
      requested_limit: 2,
      reason: 'one large RFP this week',
    });
    assert.equal(res.status, 201);
    assert.equal(res.body.request.currentLimit, 0);
    assert.deepEqual([res.body.upgrade.plan, res.body.upgrade.name, res.body.upgrade.hardLimit], ['pro', 'Pro', 10]);
  });

  test('roles: Viewers and callers without the secret are refused, and nothing is written', async () => {
    const before = await written();
    const body = { company_id: pro, feature: 'rates', requested_limit: 9000, reason: 'more please' };
    const viewer = await ask(body, as('Viewer'));
    assert.equal(viewer.status, 403);
    assert.match(viewer.body.error, /Editor role required/);
    assert.equal((await ask(body, {})).status, 401);
    assert.equal(await written(), before);
  });

  test('bad input gets a 4xx that says what is wrong and where, and writes nothing', async () => {
    const before = await written();
    const cases: Array<[unknown, number, RegExp, string?]> = [
      ['company_id=x', 415, /send the body as application\/json, not 'text\/plain'/, 'text/plain'],
      ['{"company_id":', 400, /JSON/],
      [[1, 2], 400, /send a JSON object/],
      [{}, 400, /companyId is required; feature is required; requestedLimit is required; reason is required/],
      [
        { companyId: 'acme', feature: 'rates', requestedLimit: 10.5, reason: 'more please' },
        400,
        /companyId must be a UUID; requestedLimit must be a whole number/,
      ],
      [
        { companyId: pro, company_id: pro, feature: 'rates', requestedLimit: 10, reason: 'more please' },
        400,
        /unknown field 'company_id'/,
      ],
      [
        { company_id: 'acme', feature: 'rates', requested_limit: 10, reason: 'more please' },
        400,
        /company_id must be a UUID/,
      ],
      [
        { company_id: pro, feature: 'shipments', requested_limit: 10, reason: 'more please' },
        400,
        /feature must be one of rates, bulk_rating, directory, api_access, not 'shipments'/,
      ],
      [
        { company_id: pro, feature: 'rates', requested_limit: '5000', reason: 'more please' },
        400,
        /requested_limit must be a number/,
      ],
      [
        { company_id: pro, feature: 'rates', requested_limit: 10.5, reason: 'more please' },
        400,
        /requested_limit must be a whole number/,
      ],
      [
        { company_id: pro, feature: 'rates', requested_limit: -3, reason: 'more please' },
        400,
        /requested_limit must be above 0/,
      ],
      [
        { company_id: pro, feature: 'rates', requested_limit: 1e12, reason: 'more please' },
        400,
        /requested_limit must be at most 1000000000/,
      ],
      [
        { company_id: pro, feature: 'rates', requested_limit: 5000, reason: '  ' },
        400,
        /reason: give a reason of at least 3 characters/,
      ],
      [{ company_id: pro, feature: 'rates', requested_limit: 5000, reason: 'more', urgent: true }, 400, /urgent/],
      [
        { company_id: pro, feature: 'rates', requested_limit: 1000, reason: 'more please' },
        422,
        /requested_limit 1000 is not above the current limit of 1000 quotes per month on the pro plan/,
      ],
      [
        { company_id: enterprise, feature: 'rates', requested_limit: 5000, reason: 'more please' },
        422,
        /already has unlimited rates/,
      ],
      [
        {
          company_id: '00000000-0000-4000-8000-000000000000',
          feature: 'rates',
          requested_limit: 5000,
          reason: 'more please',
        },
        404,
        /no live company/,
      ],
    ];
    for (const [body, status, message, contentType] of cases) {
      const res = await ask(body, as('Editor'), contentType);
      assert.equal(res.status, status, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.error, message);
    }
    assert.equal(await written(), before);
  });

  test('any JSON body is answered with a 4xx or a request, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          {
            company_id: fc.oneof(fc.constant(pro), fc.uuid(), fc.string(), fc.integer()),
            feature: fc.oneof(fc.constantFrom('rates', 'bulk_rating', 'directory', 'api_access'), fc.string()),
            requested_limit: fc.oneof(fc.integer({ min: -5, max: 2_000_000_000 }), fc.double(), fc.string()),
            reason: fc.oneof(fc.string({ maxLength: 1200 }), fc.constant(null)),
          },
          { requiredKeys: [] }
        ),
        async (body) => {
          const res = await ask(body);
          assert.ok(
            [200, 201, 400, 404, 422].includes(res.status),
            `${res.status} for ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`
          );
        }
      ),
      { numRuns: 60 }
    );
  });
});
