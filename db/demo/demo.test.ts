import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { createPool, type Pool } from '../../core/db.ts';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';
import {
  activeIncidents,
  createDemoState,
  diurnalFactor,
  OVERLAND_EXPRESS,
  runDemoTick,
  seedDemo,
  startDemoTraffic,
  type DemoState,
  type TickSummary,
} from './index.ts';

// Two databases: one seeded at the real time (the funnel views compare with the database's now()), one
// seeded and ticked on a fake clock so the incident and limit scenarios replay exactly.
let live: TestDatabase;
let sim: TestDatabase;
const T0 = new Date('2030-05-14T19:00:00Z');
const minute = (m: number) => new Date(T0.getTime() + m * 60_000);

before(async () => {
  [live, sim] = await Promise.all([createTestDatabase(), createTestDatabase()]);
});
after(async () => {
  await Promise.all([live?.drop(), sim?.drop()]);
});

async function tableCounts(pool: Pool): Promise<Record<string, number>> {
  const tables = [
    'companies',
    'org_entitlements',
    'quotes',
    'invoices',
    'directory_companies',
    'directory_docs',
    'usage_events',
    'agent_tasks',
  ];
  const { rows } = await pool.query<{ t: string; n: string }>(
    tables.map((t) => `SELECT '${t}' AS t, count(*) AS n FROM ${t}`).join(' UNION ALL ')
  );
  return Object.fromEntries(rows.map((r) => [r.t, Number(r.n)]));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await check()); await sleep(20)) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
  }
}

async function scalar(pool: Pool, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await pool.query<{ v: string | number | null }>(sql, params);
  return Number(rows[0]?.v ?? NaN);
}

test('the clock decides the traffic curve and the incident schedule', () => {
  assert.ok(Math.abs(diurnalFactor(new Date('2030-05-14T07:00:00Z')) - 0.3) < 1e-9);
  assert.ok(Math.abs(diurnalFactor(new Date('2030-05-14T19:00:00Z')) - 1) < 1e-9);
  const kinds = (iso: string) => activeIncidents(new Date(iso)).map((i) => i.kind);
  assert.deepEqual(kinds('2030-05-14T03:09:59Z'), []);
  assert.deepEqual(kinds('2030-05-14T03:10:00Z'), ['error_burst']);
  assert.deepEqual(kinds('2030-05-14T03:13:59Z'), ['error_burst']);
  assert.deepEqual(kinds('2030-05-14T03:14:00Z'), []);
  assert.deepEqual(kinds('2030-05-14T22:37:00Z'), ['slow_quotes']);
  assert.deepEqual(kinds('2030-05-14T22:54:30Z'), ['agent_failures']);
  assert.equal(activeIncidents(new Date('2030-05-14T22:12:00Z'))[0]?.region, 'us-east-1');
});

test('seedDemo writes a plausible tenant base once and is idempotent', async () => {
  assert.deepEqual(await seedDemo(live.pool), { created: true });
  const first = await tableCounts(live.pool);
  assert.deepEqual(await seedDemo(live.pool), { created: false });
  assert.deepEqual(await tableCounts(live.pool), first);

  assert.equal(first.companies, 60);
  assert.ok(first.quotes! > 1000 && first.invoices! > 300 && first.directory_docs! > 1000, JSON.stringify(first));
  const { rows: plans } = await live.pool.query<{ plan_id: string; n: string }>(
    `SELECT plan_id, count(*) AS n FROM org_entitlements GROUP BY 1`
  );
  assert.deepEqual(Object.fromEntries(plans.map((r) => [r.plan_id, Number(r.n)])), {
    starter: 24,
    pro: 27,
    enterprise: 9,
  });
  const deleted = await scalar(live.pool, `SELECT count(*) AS v FROM companies WHERE deleted_at IS NOT NULL`);
  assert.ok(deleted >= 1 && deleted <= 2);
  const trialing = await scalar(
    live.pool,
    `SELECT count(*) AS v FROM org_entitlements WHERE trial_ends_at > now() AND stripe_subscription_id IS NULL`
  );
  assert.ok(trialing > 0);
  const badIds = await scalar(
    live.pool,
    `SELECT count(*) AS v FROM org_entitlements
      WHERE stripe_subscription_id NOT LIKE 'sub_demo_%' OR stripe_customer_id NOT LIKE 'cus_demo_%'`
  );
  assert.equal(badIds, 0);
});

test('the 30-day funnels have cohorts that partly convert', async () => {
  const { rows } = await live.pool.query<{ funnel: string; entered: string; converted: string }>(
    `SELECT * FROM controlroom.funnel_30d`
  );
  assert.equal(rows.length, 3);
  for (const r of rows) {
    const entered = Number(r.entered);
    const converted = Number(r.converted);
    assert.ok(entered > 0 && converted > 0 && converted < entered, `${r.funnel}: ${converted}/${entered}`);
  }
  const book = rows.find((r) => r.funnel === 'quote_to_book')!;
  const ratio = Number(book.converted) / Number(book.entered);
  assert.ok(ratio >= 0.3 && ratio <= 0.4, `quote_to_book ${ratio}`);
});

test('history has realistic prices, invoices and carrier documents', async () => {
  const variance = await scalar(live.pool, `SELECT variance_ratio AS v FROM controlroom.quote_variance_30d`);
  assert.ok(variance > 0.015 && variance < 0.06, `variance ${variance}`);
  assert.equal(
    await scalar(live.pool, `SELECT count(*) AS v FROM quotes WHERE proposed_rate < 800 OR proposed_rate > 4500`),
    0
  );
  assert.equal(
    await scalar(
      live.pool,
      `SELECT count(*) AS v FROM invoices i JOIN quotes q ON q.id = i.quote_id WHERE q.status <> 'accepted'`
    ),
    0
  );
  const { rows: docs } = await live.pool.query<{ status: string; n: string }>(
    `SELECT CASE WHEN expires_at <= now() THEN 'expired' WHEN expires_at <= now() + interval '7 days' THEN 'soon' ELSE 'valid' END AS status,
            count(*) AS n FROM directory_docs GROUP BY 1`
  );
  const byStatus = Object.fromEntries(docs.map((r) => [r.status, Number(r.n)]));
  const total = (byStatus.expired ?? 0) + (byStatus.soon ?? 0) + (byStatus.valid ?? 0);
  assert.ok(byStatus.expired! > 0 && byStatus.soon! > 0 && byStatus.valid! / total > 0.7, JSON.stringify(byStatus));
  assert.equal(
    await scalar(
      live.pool,
      `SELECT count(*) AS v FROM directory_companies WHERE onboarded_at <= invited_at OR (status = 'onboarded') <> (onboarded_at IS NOT NULL)`
    ),
    0
  );
});

test('seeded usage: most tenants well under their included amounts, a handful near them, Overland at 95%', async () => {
  // Usage this period against the included amount (soft limit), as the exporter and billing measure it.
  const { rows } = await live.pool.query<{ name: string; feature_key: string; ratio: number; hard_ratio: number }>(
    `SELECT c.name, u.feature_key, sum(u.qty)::float8 / pf.soft_limit AS ratio, sum(u.qty)::float8 / pf.hard_limit AS hard_ratio
       FROM usage_events u
       JOIN companies c ON c.id = u.company_id AND c.deleted_at IS NULL
       JOIN org_entitlements e ON e.company_id = c.id
       JOIN plan_features pf ON pf.plan_id = e.plan_id AND pf.feature_key = u.feature_key AND pf.soft_limit > 0
      WHERE u.occurred_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        AND (pf.period = 'month' OR u.occurred_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
      GROUP BY 1, 2, pf.soft_limit, pf.hard_limit`
  );
  const hot = rows.filter((r) => r.ratio >= 0.8);
  assert.ok(hot.length >= 3 && hot.length <= 8, JSON.stringify(hot));
  assert.ok(
    hot.some((r) => r.feature_key === 'bulk_rating'),
    'one tenant near its included bulk jobs today'
  );
  assert.ok(
    rows.every((r) => r.ratio < 1),
    'nobody has used up an included amount (nothing billed) before live traffic'
  );
  assert.ok(rows.every((r) => r.hard_ratio < 0.5));
  assert.ok(rows.filter((r) => r.ratio < 0.7).length > rows.length * 0.8);
  const overland = rows.find((r) => r.name === OVERLAND_EXPRESS && r.feature_key === 'rates');
  assert.ok(overland && Math.abs(overland.ratio - 0.95) < 0.005, JSON.stringify(overland));
  // Bulk rating is metered in jobs: one unit per usage row.
  assert.equal(
    await scalar(live.pool, `SELECT count(*) AS v FROM usage_events WHERE feature_key = 'bulk_rating' AND qty <> 1`),
    0
  );
  const enterpriseJobs = await scalar(
    live.pool,
    `SELECT count(*) AS v FROM usage_events u JOIN org_entitlements e ON e.company_id = u.company_id
      WHERE u.feature_key = 'bulk_rating' AND e.plan_id = 'enterprise'`
  );
  assert.ok(enterpriseJobs > 0, 'enterprise tenants submit bulk jobs too');
});

// One simulated hour at 60-second ticks from T0, shared by the tests below.
const hour: TickSummary[] = [];
let overlandBefore = 0;
const overlandMonthRates = () =>
  scalar(
    sim.pool,
    `SELECT sum(u.qty) AS v FROM usage_events u JOIN companies c ON c.id = u.company_id
      WHERE c.name = $1 AND u.feature_key = 'rates' AND u.occurred_at >= '2030-05-01' AND u.occurred_at < '2030-06-01'`,
    [OVERLAND_EXPRESS]
  );

test('an hour of live traffic on a fake clock', async () => {
  assert.deepEqual(await seedDemo(sim.pool, { now: () => T0 }), { created: true });
  overlandBefore = await overlandMonthRates();
  const state = createDemoState({ tickMs: 60_000, requestsPerSecond: 10 });
  for (let m = 1; m <= 60; m++) hour.push(await runDemoTick(sim.pool, state, minute(m)));
  const calls = hour.reduce((sum, s) => sum + s.inserted.api_requests, 0);
  // 10 rps for an hour near the afternoon peak.
  assert.ok(calls > 30_000 && calls < 37_000, `calls ${calls}`);
  assert.ok(hour.every((s) => s.inserted.quote_requests > 0 && s.inserted.usage_events > 0));
  assert.deepEqual(hour[10]?.incidents, ['error_burst']);
  assert.deepEqual(hour[20]?.incidents, []);
});

test('5xx stay rare in normal minutes and burst in us-east-1 at minutes 10-13', async () => {
  const share = async (fromMinute: number, toMinute: number, region: string) =>
    scalar(
      sim.pool,
      `SELECT avg((status_code >= 500)::int) AS v FROM api_requests WHERE created_at >= $1 AND created_at < $2 AND region = $3`,
      [minute(fromMinute), minute(toMinute), region]
    );
  assert.ok((await share(15, 35, 'us-east-1')) < 0.01);
  assert.ok((await share(15, 35, 'us-west-2')) < 0.01);
  const burst = await share(10, 14, 'us-east-1');
  assert.ok(burst > 0.1 && burst < 0.3, `burst ${burst}`);
  assert.ok((await share(10, 14, 'us-west-2')) < 0.01);
  const clientErrors = await scalar(
    sim.pool,
    `SELECT avg((status_code BETWEEN 400 AND 499)::int) AS v FROM api_requests`
  );
  assert.ok(clientErrors > 0.015 && clientErrors < 0.05, `4xx ${clientErrors}`);
});

test('uncached quotes slow down at minutes 35-39 while cached ones do not', async () => {
  const median = (m: number, cached: boolean) =>
    scalar(
      sim.pool,
      `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY response_time_ms) AS v FROM quote_requests WHERE created_at = $1 AND cached = $2`,
      [minute(m), cached]
    );
  const normal = await median(30, false);
  const slow = await median(36, false);
  assert.ok(normal > 120 && normal < 260, `normal ${normal}`);
  assert.ok(slow > normal * 2.5, `slow ${slow} vs ${normal}`);
  assert.ok((await median(36, true)) < 60);
  const cachedShare = await scalar(sim.pool, `SELECT avg(cached::int) AS v FROM quote_requests`);
  assert.ok(cachedShare > 0.35 && cachedShare < 0.45);
});

test('Overland Express uses up its included pro quotes within the first hour', async () => {
  // pro rates: 500 included, 1000 hard; seeded at 95% of the included amount
  assert.equal(overlandBefore, 475);
  const after = await overlandMonthRates();
  assert.ok(after > 500 && after < 1000, `after an hour ${after}: past the included amount, not yet at the hard limit`);
  // Its api_access rows are aggregated per tick, not one per call.
  const perTick = await scalar(
    sim.pool,
    `SELECT max(n) AS v FROM (SELECT count(*) AS n FROM usage_events WHERE feature_key = 'api_access' AND occurred_at > $1
      GROUP BY company_id, occurred_at) x`,
    [T0]
  );
  assert.equal(perTick, 1);
});

async function ticksEverySecond(state: DemoState, from: Date, seconds: number): Promise<Date> {
  let at = from;
  for (let i = 0; i < seconds; i++) {
    at = new Date(from.getTime() + i * 1000);
    await runDemoTick(sim.pool, state, at);
  }
  return at;
}

const oldestQueuedSeconds = (at: Date) =>
  scalar(
    sim.pool,
    `SELECT coalesce(extract(epoch FROM $1 - min(created_at)), 0) AS v FROM agent_tasks WHERE status = 'queued' AND created_at <= $1`,
    [at]
  );

test('the agent queue drains within seconds normally and backs up during agent failures', async () => {
  const state = createDemoState();
  const normalEnd = await ticksEverySecond(state, new Date('2030-05-14T21:20:00Z'), 90);
  const stale = await scalar(
    sim.pool,
    `SELECT count(*) AS v FROM agent_tasks WHERE status IN ('queued', 'running') AND created_at <= $1::timestamptz - interval '20 seconds'`,
    [normalEnd]
  );
  assert.equal(stale, 0, 'nothing older than 20 s is still open');
  assert.ok((await oldestQueuedSeconds(normalEnd)) < 10);

  // The whole incident, minutes 50-54.
  const incidentEnd = await ticksEverySecond(state, new Date('2030-05-14T21:50:00Z'), 300);
  assert.ok((await oldestQueuedSeconds(incidentEnd)) > 60, 'the queue backs up');
  const syncFailure = await scalar(
    sim.pool,
    `SELECT avg((status = 'failed')::int) AS v FROM agent_tasks
      WHERE fn_name = 'sync_carrier_docs' AND status IN ('success', 'failed') AND updated_at >= '2030-05-14T21:50:10Z' AND updated_at <= $1`,
    [incidentEnd]
  );
  // Everything finishing after the first seconds started while the provider was down.
  assert.ok(syncFailure > 0.2, `sync_carrier_docs failure ${syncFailure}`);

  // Hung calls time out a minute after the provider recovers, then the backlog drains.
  const recovered = await ticksEverySecond(state, new Date('2030-05-14T21:55:00Z'), 300);
  assert.ok((await oldestQueuedSeconds(recovered)) < 20, 'the backlog drains after the incident');
});

// Runs days after the hour above, so it comes after the tests that tick within it.
test('a trial ending during live traffic converts or loses access', async () => {
  const { rows } = await sim.pool.query<{ company_id: string; trial_ends_at: Date }>(
    `SELECT company_id, trial_ends_at FROM org_entitlements
      WHERE stripe_subscription_id IS NULL AND trial_ends_at > $1 ORDER BY trial_ends_at LIMIT 1`,
    [minute(60)]
  );
  const trial = rows[0]!;
  const state = createDemoState({ tickMs: 60_000, requestsPerSecond: 1 });
  const before = new Date(trial.trial_ends_at.getTime() - 1000);
  await runDemoTick(sim.pool, state, before);
  assert.ok(
    state.tenants.some((t) => t.id === trial.company_id),
    'a running trial can use the product'
  );
  const ending = await runDemoTick(sim.pool, state, new Date(before.getTime() + 60_000));
  const after = await runDemoTick(sim.pool, state, new Date(before.getTime() + 120_000));
  const converted = await scalar(
    sim.pool,
    `SELECT count(*) AS v FROM org_entitlements WHERE company_id = $1 AND stripe_subscription_id LIKE 'sub_demo_%'`,
    [trial.company_id]
  );
  assert.equal(ending.updated.org_entitlements, converted);
  assert.equal(
    state.tenants.some((t) => t.id === trial.company_id),
    converted === 1
  );
  assert.equal(after.activeTenants, state.tenants.length);
});

test('startDemoTraffic ticks until stopped and survives a database it cannot reach', async () => {
  const now = () => new Date('2030-05-14T23:00:00Z');
  const written = () => scalar(sim.pool, `SELECT count(*) AS v FROM api_requests WHERE created_at = $1`, [now()]);
  const traffic = startDemoTraffic(sim.pool, { tickMs: 20, now });
  await eventually(async () => (await written()) > 0);
  await traffic.stop();
  const afterStop = await written();
  await sleep(100);
  assert.equal(await written(), afterStop, 'no tick after stop()');

  const lines: string[] = [];
  const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
  const broken = createPool(sim.url.replace(/\/[^/]+$/, '/no_such_database'), {
    max: 1,
    statementTimeoutMs: 1000,
    applicationName: 'demo-test',
  });
  const failing = startDemoTraffic(broken, { tickMs: 20, now }, pino({ level: 'error' }, sink));
  await eventually(async () => lines.length >= 2);
  await failing.stop();
  await broken.end();
  assert.ok(lines.length >= 2, `retried: ${lines.length} errors logged`);
  assert.match(lines[0]!, /demo seed failed, retrying next tick/);
});
