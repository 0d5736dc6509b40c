import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { usageAgainstPlan } from '../../core/plan-usage.ts';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';
import { DEMO_INCIDENTS, DEMO_INCIDENT_NAMES } from './incident-names.ts';
import { TENANT_LIMIT_TARGETS, TRAFFIC_INCIDENTS, triggerDemoIncident } from './incidents.ts';
import { createDemoState, runDemoTick, seedDemo } from './index.ts';

// A minute of the hour with no scheduled incident (they are at :10, :35 and :50), on a fake clock.
const T = new Date('2030-05-14T19:20:00Z');
const at = (seconds: number) => new Date(T.getTime() + seconds * 1000);
let db: TestDatabase;

before(async () => {
  db = await createTestDatabase();
  await seedDemo(db.pool, { tenants: 20, backfillDays: 2, now: () => T });
});
after(async () => db?.drop());

test('every incident in --help is one the trigger knows, and states the length it plays for', () => {
  assert.deepEqual(DEMO_INCIDENT_NAMES, ['error_burst', 'slow_quotes', 'agent_failures', 'tenant_limits']);
  for (const [kind, incident] of Object.entries(TRAFFIC_INCIDENTS)) {
    assert.ok(DEMO_INCIDENTS[kind as keyof typeof DEMO_INCIDENTS].startsWith(`${incident.minutes} min:`), kind);
  }
});

test('a triggered error burst plays from the next tick, in us-east-1, for its 8 minutes, and is audited', async () => {
  const state = createDemoState({ tenants: 20, requestsPerSecond: 60, now: () => T });
  assert.deepEqual((await runDemoTick(db.pool, state, at(0))).incidents, [], 'no scheduled incident at :20');

  const result = await triggerDemoIncident(db.pool, 'error_burst', 'test:operator', at(1));
  assert.ok('endsAt' in result);
  assert.equal(result.endsAt.getTime() - result.startsAt.getTime(), TRAFFIC_INCIDENTS.error_burst.minutes * 60_000);

  for (let s = 2; s <= 31; s++) assert.deepEqual((await runDemoTick(db.pool, state, at(s))).incidents, ['error_burst']);
  const { rows } = await db.pool.query<{ region: string; share: number }>(
    `SELECT region, avg((status_code >= 500)::int)::float8 AS share FROM api_requests
      WHERE created_at BETWEEN $1 AND $2 GROUP BY region ORDER BY region`,
    [at(2), at(31)]
  );
  const share = Object.fromEntries(rows.map((r) => [r.region, r.share]));
  assert.ok(share['us-east-1']! > 0.12, `us-east-1 5xx share ${share['us-east-1']}`);
  assert.ok(share['us-west-2']! < 0.02, `us-west-2 5xx share ${share['us-west-2']}`);

  // Over once its minutes are up.
  assert.deepEqual((await runDemoTick(db.pool, state, at(1 + 8 * 60))).incidents, []);
  const audited = await db.pool.query(
    `SELECT actor, payload FROM audit_log WHERE action = 'demo.incident_triggered' AND target = $1`,
    [`demo_incidents/${result.id}`]
  );
  assert.equal(audited.rows[0]?.actor, 'test:operator');
});

test('tenant_limits takes three tenants under 80% to 85, 95 and 105% of their included quotes, and others the next time', async () => {
  const ratios = async () =>
    new Map(
      (await usageAgainstPlan(db.pool, { feature: 'rates', limitedOnly: true, at: at(600) }))
        .filter((u) => u.current)
        .map((u) => [u.companyId, u.ratio])
    );
  const before = await ratios();
  const first = await triggerDemoIncident(db.pool, 'tenant_limits', 'test:operator', at(600));
  assert.ok('tenants' in first);
  assert.equal(first.tenants.length, 3);
  const afterFirst = await ratios();
  first.tenants.forEach((t, i) => {
    assert.ok(before.get(t.companyId)! < 0.8, `${t.name} was under 80%`);
    const ratio = afterFirst.get(t.companyId)!;
    assert.ok(ratio >= TENANT_LIMIT_TARGETS[i]! && ratio < TENANT_LIMIT_TARGETS[i]! + 0.05, `${t.name} at ${ratio}`);
  });
  const second = await triggerDemoIncident(db.pool, 'tenant_limits', 'test:operator', at(601));
  assert.ok('tenants' in second);
  assert.equal(
    second.tenants.filter((t) => first.tenants.some((f) => f.companyId === t.companyId)).length,
    0,
    'the same tenants again'
  );
});
