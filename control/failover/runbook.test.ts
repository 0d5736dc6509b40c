import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { judgeIntegrity, judgeObjectives } from './integrity.ts';
import { parseQueueDepth } from './health.ts';
import { asUser, call, EAST, startHarness, waitUntil, WEST, type Harness } from '../../testing/failover.ts';

const admin = asUser('Admin', 'ana');

async function routingOf(h: Harness) {
  return (await call(h.base, 'GET', '/api/regions/routing')).body as {
    write_frozen: boolean;
    jobs_paused: boolean;
    active: string;
    regions: Array<{ name: string; weight: number; healthy: boolean }>;
  };
}
const weights = async (h: Harness) => Object.fromEntries((await routingOf(h)).regions.map((r) => [r.name, r.weight]));
const healthy = async (h: Harness, name: string) => (await routingOf(h)).regions.find((r) => r.name === name)!.healthy;
const actions = async (h: Harness, where: string) =>
  (
    await h.db.pool.query<{ action: string; payload: Record<string, unknown> }>(
      `SELECT action, payload FROM audit_log WHERE ${where} ORDER BY id`
    )
  ).rows;
const eventRow = async (h: Harness, id: string) =>
  (await h.db.pool.query(`SELECT * FROM controlroom.failover_events WHERE id = $1`, [id])).rows[0];

test('queue depth bodies: {queued, running}, {depth}, {queue_depth} or a number; anything else is unreadable', () => {
  assert.equal(parseQueueDepth('{"queued": 3, "running": 2}'), 5);
  assert.equal(parseQueueDepth('{"running": 1}'), 1);
  assert.equal(parseQueueDepth('{"depth": 0}'), 0);
  assert.equal(parseQueueDepth('{"queue_depth": 4}'), 4);
  assert.equal(parseQueueDepth('7'), 7);
  for (const bad of ['{"queued": -1}', '{"queued": 1.5}', '{}', 'lots', '"3"', '{"depth": null}'])
    assert.equal(parseQueueDepth(bad), null, bad);
});

test('integrity and objectives are judged against their limits', () => {
  const fig = (invoices: number, queue: number, rate: number | null) => ({
    at: '',
    invoices,
    agent_queue_depth: queue,
    api_error_rate: rate,
    api_requests: rate === null ? 0 : 100,
    window_seconds: 300,
  });
  const limits = { maxQueueGrowth: 10, maxErrorRateIncrease: 0.02 };
  assert.deepEqual(
    judgeIntegrity(fig(10, 5, 0.01), fig(12, 15, 0.03), limits).map((c) => c.passed),
    [true, true, true]
  );
  const bad = judgeIntegrity(fig(10, 5, 0.01), fig(9, 16, 0.031), limits);
  assert.deepEqual(
    bad.map((c) => [c.check, c.passed]),
    [
      ['invoices', false],
      ['agent_queue_depth', false],
      ['api_error_rate', false],
    ]
  );
  assert.match(bad[0]!.detail, /1 invoices fewer after the cutover \(10 → 9\)/);
  assert.match(
    judgeIntegrity(fig(1, 0, null), fig(1, 0, 0.5), limits)[2]!.detail,
    /not comparable: no API requests before/
  );
  const t = { rtoTargetSeconds: 900, rpoTargetSeconds: 300 };
  assert.deepEqual(
    [
      judgeObjectives(899, 0, t).passed,
      judgeObjectives(901, 0, t).passed,
      judgeObjectives(1, 301, t).rpo_met,
      judgeObjectives(1, null, t).passed,
    ],
    [true, false, false, null]
  );
});

describe('cutover runbook against fake regions (automatic failover on)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ withLag: true });
    await waitUntil(async () => (await healthy(h, EAST)) && (await healthy(h, WEST)), 10_000, 'both regions healthy');
  });
  after(async () => {
    await h.stop();
  });

  test('background jobs are paused, drained, then writes freeze, the write role moves and jobs resume; each phase audited', async () => {
    h.east.jobs.queued = 3;
    h.east.jobs.running = 1;
    h.west.jobs.queued = 2;
    const seen: Array<{ paused: boolean; frozen: boolean; active: string }> = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const r = await routingOf(h);
        const s = { paused: r.jobs_paused, frozen: r.write_frozen, active: r.active };
        if (JSON.stringify(seen[seen.length - 1]) !== JSON.stringify(s)) seen.push(s);
        await new Promise((res) => setTimeout(res, 5));
      }
    })();
    const res = await call(h.base, 'POST', '/api/regions/failover', admin, {
      target: WEST,
      steps: [50, 100],
      reason: 'planned move with jobs',
    });
    assert.equal(res.status, 202);
    const id = res.body.event.id as string;
    await waitUntil(async () => (await eventRow(h, id)).outcome === 'completed', 10_000, 'cutover completed');
    await waitUntil(
      async () =>
        (await actions(h, `target = 'failover_events/${id}' AND action = 'failover.jobs_resume_sent'`)).length === 2,
      5_000,
      'resume calls'
    );
    polling = false;
    await poller;
    // Jobs paused before writes freeze, writes frozen only once drained, everything released at the end.
    assert.deepEqual(seen, [
      { paused: false, frozen: false, active: EAST },
      { paused: true, frozen: false, active: EAST },
      { paused: true, frozen: true, active: EAST },
      { paused: false, frozen: false, active: WEST },
    ]);
    assert.deepEqual(
      [h.east.jobs.depth, h.west.jobs.depth, h.east.jobs.paused, h.west.jobs.paused],
      [0, 0, false, false]
    );
    assert.deepEqual(h.east.jobs.distinct('pause'), [`pause:${id}:${EAST}`]);
    const row = await eventRow(h, id);
    const whats = row.details.timeline.map((t: { what: string }) => t.what);
    assert.deepEqual(whats.slice(0, 9), [
      'requested',
      'step',
      'jobs_paused',
      'pause_sent',
      'pause_sent',
      'jobs_drained',
      'write_frozen',
      'completed',
      'jobs_resumed',
    ]);
    assert.deepEqual(row.details.jobs.depths, { [EAST]: 0, [WEST]: 0 });
    assert.equal(row.details.objectives.rto_met, true);
    assert.equal(row.details.objectives.rpo_seconds, 0);
    assert.equal(row.details.objectives.passed, true);
    const audited = (await actions(h, `target = 'failover_events/${id}'`)).map((a) => a.action);
    for (const phase of [
      'failover.jobs_paused',
      'failover.jobs_pause_sent',
      'failover.jobs_drained',
      'failover.write_frozen',
      'failover.completed',
      'failover.jobs_resumed',
      'failover.jobs_resume_sent',
    ]) {
      assert.ok(audited.includes(phase), `${phase} audited`);
    }
    assert.ok(audited.indexOf('failover.jobs_drained') < audited.indexOf('failover.write_frozen'));
  });

  test('a region that stops draining: the cutover is aborted at the drain timeout, weights restored, writes never frozen, jobs resumed', async () => {
    h.west.jobs.queued = 5;
    h.west.jobs.mode = 'stuck';
    const started = Date.now();
    const res = await call(h.base, 'POST', '/api/regions/failover', admin, {
      target: EAST,
      steps: [100],
      reason: 'move back, west stuck',
    });
    assert.equal(res.status, 202);
    const id = res.body.event.id as string;
    await waitUntil(async () => (await routingOf(h)).jobs_paused, 5_000, 'jobs paused');
    const row = await waitUntil(
      async () => {
        const e = await eventRow(h, id);
        return e.outcome === 'in_progress' ? null : e;
      },
      10_000,
      'the cutover to end'
    );
    assert.ok(Date.now() - started >= 3_000, 'waited for the drain timeout');
    assert.equal(row.outcome, 'aborted');
    assert.match(
      row.details.abort_reason,
      new RegExp(
        `background jobs did not drain within 3 s \\(${EAST}: 0 queued or running, ${WEST}: 5 queued or running\\)`
      )
    );
    const r = await routingOf(h);
    assert.deepEqual(
      [r.active, r.write_frozen, r.jobs_paused, await weights(h)],
      [WEST, false, false, { [EAST]: 0, [WEST]: 100 }]
    );
    assert.ok(!row.details.timeline.some((t: { what: string }) => t.what === 'write_frozen'));
    await waitUntil(async () => h.west.jobs.distinct('resume').includes(`resume:${id}:${WEST}`), 5_000, 'west resumed');
    const audited = (await actions(h, `target = 'failover_events/${id}'`)).map((a) => a.action);
    assert.deepEqual(
      audited.filter((a) => ['failover.jobs_paused', 'failover.aborted', 'failover.jobs_resumed'].includes(a)),
      ['failover.jobs_paused', 'failover.jobs_resumed', 'failover.aborted']
    );
    h.west.jobs.mode = 'drains';
  });

  test('a region failing mid-shift while jobs drain: aborted, weights restored, jobs resumed; a resume endpoint that fails is retried until it answers', async () => {
    h.west.jobs.queued = 50;
    h.west.jobs.mode = 'stuck';
    h.east.jobs.resumeAnswers = 503;
    const res = await call(h.base, 'POST', '/api/regions/failover', admin, {
      target: EAST,
      steps: [30, 100],
      reason: 'move back again',
    });
    const id = res.body.event.id as string;
    await waitUntil(
      async () => (await weights(h))[EAST] === 30 && (await routingOf(h)).jobs_paused,
      5_000,
      'first step and jobs paused'
    );
    h.east.mode = 'fail';
    const row = await waitUntil(
      async () => {
        const e = await eventRow(h, id);
        return e.outcome === 'in_progress' ? null : e;
      },
      5_000,
      'the cutover to end'
    );
    assert.equal(row.outcome, 'aborted');
    assert.match(row.details.abort_reason, /us-east-1 became unhealthy during the cutover/);
    assert.deepEqual(await weights(h), { [EAST]: 0, [WEST]: 100 });
    assert.equal((await routingOf(h)).jobs_paused, false);
    // us-east-1's resume endpoint fails: the call stays owed and is retried.
    await waitUntil(
      async () =>
        h.east.jobs.calls.filter((c) => c.action === 'resume' && c.key === `resume:${id}:${EAST}`).length >= 2,
      5_000,
      'resume retried'
    );
    const owed = (await call(h.base, 'GET', '/api/regions', asUser('Viewer'))).body.control.resume_calls_owed;
    assert.deepEqual(
      owed.map((o: { region: string; last_error: string }) => [o.region, o.last_error]),
      [[EAST, 'HTTP 503']]
    );
    h.east.jobs.resumeAnswers = 200;
    await waitUntil(
      async () =>
        (await call(h.base, 'GET', '/api/regions', asUser('Viewer'))).body.control.resume_calls_owed.length === 0,
      10_000,
      'resume delivered'
    );
    const sent = await actions(h, `target = 'failover_events/${id}' AND action = 'failover.jobs_resume_sent'`);
    assert.deepEqual(sent.map((a) => a.payload.region).sort(), [EAST, WEST]);
    assert.ok((sent.find((a) => a.payload.region === EAST)!.payload.attempts as number) >= 2);
    h.east.mode = 'ok';
    h.west.jobs.mode = 'drains';
    h.west.jobs.queued = 0;
    await waitUntil(async () => healthy(h, EAST), 5_000, 'east healthy again');
  });

  test('pin-back: the standby carrying part of the traffic turns unhealthy, and traffic returns to the healthy primary automatically', async () => {
    const mark = (await h.db.pool.query<{ id: string }>(`SELECT max(id)::text AS id FROM audit_log`)).rows[0]!.id;
    const shift = await call(h.base, 'POST', '/api/regions/shift', admin, {
      weights: { [EAST]: 25 },
      reason: 'canary on the standby',
    });
    assert.equal(shift.status, 200);
    assert.deepEqual(await weights(h), { [EAST]: 25, [WEST]: 75 });
    h.east.mode = 'fail';
    await waitUntil(async () => (await weights(h))[EAST] === 0, 5_000, 'pinned back');
    assert.equal((await routingOf(h)).active, WEST);
    const event = (
      await h.db.pool.query(
        `SELECT * FROM controlroom.failover_events WHERE kind = 'pin_back' ORDER BY id DESC LIMIT 1`
      )
    ).rows[0];
    assert.deepEqual(
      [event.from_region, event.to_region, event.actor, event.outcome],
      [EAST, WEST, 'controlroom:failover', 'completed']
    );
    assert.match(
      event.reason,
      /us-east-1 carries 25% of the traffic but failed 3 health checks in a row \(HTTP 503\); us-west-2 is healthy/
    );
    const audited = await actions(h, `id > ${mark} AND action IN ('failover.pin_back_needed', 'failover.pinned_back')`);
    assert.deepEqual(
      audited.map((a) => a.action),
      ['failover.pin_back_needed', 'failover.pinned_back']
    );
    assert.equal(audited[0]!.payload.automatic, true);
    h.east.mode = 'ok';
    await waitUntil(async () => healthy(h, EAST), 5_000, 'east healthy again');
  });

  test('the health checks are published as a read-latency histogram per region', async () => {
    h.east.delayMs = 200;
    await new Promise((r) => setTimeout(r, 700));
    h.east.delayMs = 0;
    const m = await h.metrics();
    const count = m.get(`tms_region_check_duration_seconds_count{region="${EAST}"}`)!;
    const fast = m.get(`tms_region_check_duration_seconds_bucket{le="0.15",region="${EAST}"}`)!;
    assert.ok(count > 10, `${count} checks`);
    assert.ok(fast < count, 'the slow checks fall above the 150 ms bound');
    assert.equal(m.get(`tms_region_check_duration_seconds_bucket{le="+Inf",region="${EAST}"}`), count);
    assert.ok(m.get(`tms_region_check_duration_seconds_sum{region="${EAST}"}`)! >= 0.2 * (count - fast));
    assert.equal(m.get('tms_region_jobs_paused'), 0);
    assert.equal(m.get('controlroom_failover_objective_target_seconds{objective="rto"}'), 900);
  });
});

describe('pin-back offered on the page when automatic failover is off', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ config: { FAILOVER_AUTO: 'false' } });
    await waitUntil(async () => (await healthy(h, EAST)) && (await healthy(h, WEST)), 10_000, 'both regions healthy');
  });
  after(async () => {
    await h.stop();
  });

  test('the page says so, an Admin pins back, and both are audited', async () => {
    const none = await call(h.base, 'POST', '/api/regions/pin-back', admin, { reason: 'nothing to do' });
    assert.deepEqual(
      [none.status, none.body.error],
      [409, `nothing to pin back: ${EAST} already takes all the traffic`]
    );
    assert.equal(
      (await call(h.base, 'POST', '/api/regions/shift', admin, { weights: { [WEST]: 40 }, reason: 'canary' })).status,
      200
    );
    h.west.mode = 'fail';
    await waitUntil(async () => !(await healthy(h, WEST)), 5_000, 'west unhealthy');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await weights(h), { [EAST]: 60, [WEST]: 40 }, 'nothing moves by itself');
    const page = (await call(h.base, 'GET', '/api/regions', asUser('Viewer'))).body;
    assert.deepEqual(page.pin_back, { needed: true, from: WEST, to: EAST, weight: 40 });
    const needed = await actions(h, `action = 'failover.pin_back_needed'`);
    assert.deepEqual([needed.length, needed[0]!.payload.automatic, needed[0]!.payload.region], [1, false, WEST]);

    const editor = await call(h.base, 'POST', '/api/regions/pin-back', asUser('Editor'), { reason: 'pin back' });
    assert.equal(editor.status, 403);
    const bad = await call(h.base, 'POST', '/api/regions/pin-back', admin, {});
    assert.deepEqual([bad.status, bad.body.error], [400, 'invalid request: reason is required']);
    const done = await call(h.base, 'POST', '/api/regions/pin-back', admin, { reason: 'standby failing its checks' });
    assert.equal(done.status, 200);
    assert.deepEqual(
      [done.body.event.kind, done.body.event.outcome, done.body.event.details.pin_back],
      ['shift', 'completed', true]
    );
    assert.deepEqual(await weights(h), { [EAST]: 100, [WEST]: 0 });
    const requested = await actions(h, `action = 'failover.pin_back_requested'`);
    assert.deepEqual([requested.length, requested[0]!.payload.reason], [1, 'standby failing its checks']);
    assert.equal((await call(h.base, 'GET', '/api/regions', asUser('Viewer'))).body.pin_back.needed, false);
    h.west.mode = 'ok';
  });
});

describe('post-cutover integrity checks', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      withLag: true,
      settings: { integrity: { enabled: true, settleMs: 600, maxQueueGrowth: 100, maxErrorRateIncrease: 0.02 } },
    });
    await waitUntil(async () => (await healthy(h, EAST)) && (await healthy(h, WEST)), 10_000, 'both regions healthy');
    const company = '00000000-0000-4000-8000-000000000018';
    await h.db.pool.query(
      `WITH q AS (INSERT INTO quotes (company_id, status, proposed_rate) SELECT $1, 'accepted', 1000 FROM generate_series(1, 5) RETURNING id)
       INSERT INTO invoices (quote_id, amount) SELECT id, 990 FROM q`,
      [company]
    );
    await h.db.pool.query(
      `INSERT INTO api_requests (status_code, region, route) SELECT 200, 'us-east-1', '/quotes' FROM generate_series(1, 50)`
    );
  });
  after(async () => {
    await h.stop();
  });

  test('an invoice lost during the cutover fails the check, is recorded with the cutover and raises the P1 metric', async () => {
    const res = await call(h.base, 'POST', '/api/regions/failover', admin, {
      target: WEST,
      steps: [100],
      reason: 'integrity drill',
    });
    const id = res.body.event.id as string;
    assert.equal(res.body.event.details.integrity.status, 'waiting');
    assert.equal(res.body.event.details.integrity.before.invoices, 5);
    await waitUntil(async () => (await eventRow(h, id)).outcome === 'completed', 10_000, 'cutover completed');
    assert.equal((await eventRow(h, id)).details.integrity.status, 'pending');
    await h.db.pool.query(`DELETE FROM invoices WHERE id = (SELECT max(id) FROM invoices)`);
    await h.db.pool.query(
      `INSERT INTO api_requests (status_code, region, route) SELECT 200, 'us-west-2', '/quotes' FROM generate_series(1, 20)`
    );
    const row = await waitUntil(
      async () => {
        const e = await eventRow(h, id);
        return e.details.integrity.status === 'pending' ? null : e;
      },
      5_000,
      'integrity checked'
    );
    assert.equal(row.details.integrity.status, 'failed');
    assert.deepEqual(
      row.details.integrity.checks.map((c: { check: string; passed: boolean }) => [c.check, c.passed]),
      [
        ['invoices', false],
        ['agent_queue_depth', true],
        ['api_error_rate', true],
      ]
    );
    assert.deepEqual([row.details.integrity.before.invoices, row.details.integrity.after.invoices], [5, 4]);
    const audited = await actions(h, `target = 'failover_events/${id}' AND action LIKE 'failover.integrity%'`);
    assert.deepEqual(
      audited.map((a) => [a.action, a.payload.passed]),
      [['failover.integrity_failed', false]]
    );
    const m = await h.metrics();
    assert.equal(m.get('controlroom_failover_integrity_check_failed{check="invoices"}'), 1);
    assert.equal(m.get('controlroom_failover_integrity_check_failed{check="api_error_rate"}'), 0);
  });

  test('a clean cutover passes its checks, and the metric follows the latest check', async () => {
    const res = await call(h.base, 'POST', '/api/regions/failover', admin, {
      target: EAST,
      steps: [100],
      reason: 'back home',
    });
    const id = res.body.event.id as string;
    const row = await waitUntil(
      async () => {
        const e = await eventRow(h, id);
        return ['passed', 'failed'].includes(e.details.integrity?.status) ? e : null;
      },
      10_000,
      'integrity checked'
    );
    assert.equal(row.details.integrity.status, 'passed');
    const m = await h.metrics();
    assert.equal(m.get('controlroom_failover_integrity_check_failed{check="invoices"}'), 0);
  });
});
