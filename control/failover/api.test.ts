import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { API_SECRET, asUser, call, EAST, startHarness, waitUntil, WEST, type Harness } from '../../testing/failover.ts';

let h: Harness;
const admin = asUser('Admin', 'ana');
const routing = async () =>
  (await call(h.base, 'GET', '/api/regions/routing')).body as {
    epoch: number;
    write_frozen: boolean;
    active: string;
    regions: Array<{ name: string; base_url: string; weight: number; active: boolean; healthy: boolean }>;
  };
const weightOf = (r: Awaited<ReturnType<typeof routing>>, name: string) =>
  r.regions.find((x) => x.name === name)!.weight;
const healthOf = async (name: string) => (await routing()).regions.find((x) => x.name === name)!.healthy;
const auditRows = async (sql = '') =>
  (
    await h.db.pool.query(
      `SELECT action, actor, target, payload, host(ip_address) AS ip, user_agent FROM audit_log WHERE action LIKE 'failover.%' ${sql} ORDER BY id`
    )
  ).rows;

before(async () => {
  h = await startHarness();
  await waitUntil(async () => (await healthOf(EAST)) && (await healthOf(WEST)), 10_000, 'both regions healthy');
});
after(async () => {
  await h.stop();
});

describe('access through the Grafana plugin proxy', () => {
  test('the routing for the TMS router needs no Grafana user', async () => {
    const res = await fetch(`${h.base}/api/regions/routing`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = (await res.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ['active', 'epoch', 'jobs_paused', 'regions', 'write_frozen']);
    assert.deepEqual(body.active, EAST);
    assert.equal(body.write_frozen, false);
    assert.equal(body.jobs_paused, false);
    assert.equal(body.epoch, 1);
    assert.deepEqual(body.regions, [
      { name: EAST, base_url: h.east.url, weight: 100, active: true, healthy: true },
      { name: WEST, base_url: h.west.url, weight: 0, active: false, healthy: true },
    ]);
  });

  test('no proxy secret: 401; a wrong one: 401', async () => {
    const none = await call(h.base, 'GET', '/api/regions');
    assert.equal(none.status, 401);
    assert.match(none.body.error, /missing X-Controlroom-Secret/);
    const wrong = await call(
      h.base,
      'POST',
      '/api/regions/failover',
      { ...admin, 'x-controlroom-secret': 'x'.repeat(API_SECRET.length) },
      { target: WEST, reason: 'test' }
    );
    assert.deepEqual([wrong.status, wrong.body.error], [401, 'invalid X-Controlroom-Secret']);
  });

  test('a viewer reads regions, health history, control state and events', async () => {
    const res = await call(h.base, 'GET', '/api/regions?checks=5', asUser('Viewer'));
    assert.equal(res.status, 200);
    assert.deepEqual(
      res.body.regions.map((r: { name: string }) => r.name),
      [EAST, WEST]
    );
    const east = res.body.regions[0];
    assert.equal(east.healthy, true);
    assert.ok(east.checks.length >= 1 && east.checks.length <= 5);
    assert.equal(east.checks[0].ok, true);
    assert.deepEqual(
      [res.body.control.epoch, res.body.control.lease_holder, res.body.control.write_frozen, res.body.control.cutover],
      [1, 'test-a', false, null]
    );
    assert.equal(res.body.control.this_instance.leader, true);
    assert.deepEqual(res.body.events, []);
    assert.equal(res.body.settings.default_steps.join(), '10,50,100');
    assert.equal((await call(h.base, 'GET', '/api/regions?checks=0', asUser('Viewer'))).status, 400);
  });

  test('viewers and editors cannot fail over, shift or abort: 403', async () => {
    const editor = await call(h.base, 'POST', '/api/regions/failover', asUser('Editor'), {
      target: WEST,
      reason: 'try it',
    });
    assert.deepEqual([editor.status, editor.body.error], [403, 'Admin role required; editor.user is Editor']);
    assert.equal(
      (
        await call(h.base, 'POST', '/api/regions/shift', asUser('Viewer'), {
          weights: { [WEST]: 10 },
          reason: 'try it',
        })
      ).status,
      403
    );
    assert.equal(
      (await call(h.base, 'POST', '/api/regions/cutover/abort', asUser('Editor'), { reason: 'try it' })).status,
      403
    );
    assert.equal((await routing()).active, EAST);
  });
});

describe('input and safety rules', () => {
  test('bad input is a 400 naming the field', async () => {
    const empty = await call(h.base, 'POST', '/api/regions/failover', admin, {});
    assert.equal(empty.status, 400);
    assert.match(empty.body.error, /target is required: name the region to fail over to/);
    assert.match(empty.body.error, /reason is required/);
    const decreasing = await call(h.base, 'POST', '/api/regions/failover', admin, {
      target: WEST,
      steps: [50, 10, 100],
      reason: 'drill',
    });
    assert.deepEqual(
      [decreasing.status, decreasing.body.error],
      [400, 'invalid request: steps must increase (50 then 10)']
    );
    const short = await call(h.base, 'POST', '/api/regions/failover', admin, {
      target: WEST,
      steps: [10, 50],
      reason: 'drill',
    });
    assert.deepEqual(
      [short.status, short.body.error],
      [400, 'invalid request: steps: the last step must be 100 (got 50)']
    );
    const unknown = await call(h.base, 'POST', '/api/regions/failover', admin, {
      target: 'eu-west-1',
      reason: 'drill',
    });
    assert.deepEqual(
      [unknown.status, unknown.body.error],
      [400, `invalid request: target: no region named "eu-west-1" (regions: ${EAST}, ${WEST})`]
    );
    const extra = await call(h.base, 'POST', '/api/regions/shift', admin, {
      weights: { [WEST]: 10 },
      reason: 'drill',
      foo: 1,
    });
    assert.equal(extra.status, 400);
    assert.equal(extra.body.error, "invalid request: the body has an unknown field 'foo'");
    const fraction = await call(h.base, 'POST', '/api/regions/shift', admin, {
      weights: { [WEST]: 10.5 },
      reason: 'drill',
    });
    assert.match(fraction.body.error, new RegExp(`weights\\.${WEST} must be a whole percentage`));
    const notJson = await fetch(`${h.base}/api/regions/shift`, { method: 'POST', headers: admin, body: '{"weights":' });
    assert.equal(notJson.status, 400);
  });

  test('never both regions at 0, the write region keeps traffic, weights add up to 100', async () => {
    const zero = await call(h.base, 'POST', '/api/regions/shift', admin, {
      weights: { [EAST]: 0, [WEST]: 0 },
      reason: 'drain all',
    });
    assert.deepEqual(
      [zero.status, zero.body.error],
      [400, 'invalid request: weights: never all regions at 0: the TMS would have nowhere to send traffic']
    );
    const activeToZero = await call(h.base, 'POST', '/api/regions/shift', admin, {
      weights: { [WEST]: 100 },
      reason: 'move all',
    });
    assert.equal(activeToZero.status, 409);
    assert.match(
      activeToZero.body.error,
      /us-east-1 is the active \(write\) region and must keep some traffic; move the write role with POST \/api\/regions\/failover/
    );
    const sum = await call(h.base, 'POST', '/api/regions/shift', admin, {
      weights: { [EAST]: 60, [WEST]: 60 },
      reason: 'too much',
    });
    assert.equal(sum.status, 400);
    assert.match(sum.body.error, /must add up to 100/);
    const same = await call(h.base, 'POST', '/api/regions/failover', admin, { target: EAST, reason: 'noop' });
    assert.deepEqual([same.status, same.body.error], [409, `target: ${EAST} is already the active region`]);
  });

  test('the database refuses both at 0 (or a sum other than 100) even from outside the API', async () => {
    await assert.rejects(
      h.db.pool.query(`UPDATE controlroom.regions SET traffic_weight = 0, active = false WHERE scope = 'live'`),
      /traffic weights of the regions in scope live sum to 0, not 100/
    );
    await assert.rejects(
      h.db.pool.query(`UPDATE controlroom.regions SET traffic_weight = 0 WHERE scope = 'live'`),
      /violates check constraint "regions_active_takes_traffic"/
    );
    await assert.rejects(
      h.db.pool.query(`UPDATE controlroom.regions SET traffic_weight = 50 WHERE scope = 'live' AND name = $1`, [WEST]),
      /sum to 150, not 100/
    );
    assert.deepEqual([weightOf(await routing(), EAST), weightOf(await routing(), WEST)], [100, 0]);
  });
});

describe('traffic shift and failover', () => {
  test('a traffic shift applies in one step, keeps the write role and is audited', async () => {
    const res = await call(h.base, 'POST', '/api/regions/shift', admin, {
      weights: { [WEST]: 30 },
      reason: 'canary traffic to the standby',
    });
    assert.equal(res.status, 200);
    assert.deepEqual(
      [res.body.event.kind, res.body.event.outcome, res.body.event.actor],
      ['shift', 'completed', 'grafana:ana']
    );
    const r = await routing();
    assert.deepEqual([r.active, weightOf(r, EAST), weightOf(r, WEST), r.write_frozen], [EAST, 70, 30, false]);
    const back = await call(h.base, 'POST', '/api/regions/shift', admin, {
      weights: { [EAST]: 100, [WEST]: 0 },
      reason: 'canary done',
    });
    assert.equal(back.status, 200);
    const audited = await auditRows(`AND action LIKE 'failover.shift%'`);
    assert.deepEqual(
      audited.map((a) => [a.action, a.actor]),
      [
        ['failover.shift_requested', 'grafana:ana'],
        ['failover.shift_applied', 'controlroom:failover'],
        ['failover.shift_requested', 'grafana:ana'],
        ['failover.shift_applied', 'controlroom:failover'],
      ]
    );
    assert.deepEqual(
      [audited[0].ip, audited[0].user_agent, audited[0].payload.reason, audited[0].payload.role],
      ['127.0.0.1', 'failover-test', 'canary traffic to the standby', 'Admin']
    );
  });

  test('manual failover: 10% → 50% → 100% in steps, writes frozen while the write role moves, then released', async () => {
    const seen: Array<{ active: string; east: number; west: number; frozen: boolean }> = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const r = await routing();
        const s = { active: r.active, east: weightOf(r, EAST), west: weightOf(r, WEST), frozen: r.write_frozen };
        const last = seen[seen.length - 1];
        if (!last || JSON.stringify(last) !== JSON.stringify(s)) seen.push(s);
        await new Promise((res) => setTimeout(res, 10));
      }
    })();
    await waitUntil(async () => seen.length > 0, 5_000, 'the first routing poll');
    const res = await call(h.base, 'POST', '/api/regions/failover', admin, {
      target: WEST,
      reason: 'planned maintenance in us-east-1',
    });
    assert.equal(res.status, 202);
    assert.deepEqual(res.body.event.steps, [10, 50, 100]);
    assert.deepEqual(res.body.plan, [
      { [WEST]: 10, [EAST]: 90 },
      { [WEST]: 50, [EAST]: 50 },
      { [WEST]: 100, [EAST]: 0 },
    ]);
    const during = await call(h.base, 'GET', '/api/regions', asUser('Viewer'));
    assert.equal(during.body.control.cutover.to, WEST);
    await waitUntil(async () => seen.some((s) => s.active === WEST && !s.frozen), 10_000, 'cutover complete');
    polling = false;
    await poller;
    assert.deepEqual(seen, [
      { active: EAST, east: 100, west: 0, frozen: false },
      { active: EAST, east: 90, west: 10, frozen: false },
      { active: EAST, east: 50, west: 50, frozen: false },
      { active: EAST, east: 50, west: 50, frozen: true },
      { active: WEST, east: 0, west: 100, frozen: false },
    ]);
    const event = (
      await h.db.pool.query(`SELECT * FROM controlroom.failover_events WHERE id = $1`, [res.body.event.id])
    ).rows[0];
    assert.deepEqual(
      [event.kind, event.outcome, event.actor, event.forced, event.reason],
      ['manual', 'completed', 'grafana:ana', false, 'planned maintenance in us-east-1']
    );
    assert.deepEqual(event.details.timeline.map((t: { what: string }) => t.what).slice(0, 10), [
      'requested',
      'step',
      'step',
      'jobs_paused',
      'pause_sent',
      'pause_sent',
      'jobs_drained',
      'write_frozen',
      'completed',
      'jobs_resumed',
    ]);
    assert.ok(event.details.drain.frozen_ms >= 300);
    // The resume calls are owed once the write role moved, and sent at the next poll.
    await waitUntil(
      async () => (await auditRows(`AND action = 'failover.jobs_resume_sent'`)).length === 2,
      5_000,
      'both resume calls'
    );
    assert.deepEqual(
      [h.east.jobs.distinct('pause'), h.west.jobs.distinct('resume')],
      [[`pause:${res.body.event.id}:${EAST}`], [`resume:${res.body.event.id}:${WEST}`]]
    );
    const audited = await auditRows(`AND target = 'failover_events/${res.body.event.id}'`);
    assert.deepEqual(audited.map((a) => [a.action, a.actor]).slice(0, -2), [
      ['failover.requested', 'grafana:ana'],
      ['failover.step_applied', 'controlroom:failover'],
      ['failover.step_applied', 'controlroom:failover'],
      ['failover.jobs_paused', 'controlroom:failover'],
      ['failover.jobs_pause_sent', 'controlroom:failover'],
      ['failover.jobs_pause_sent', 'controlroom:failover'],
      ['failover.jobs_drained', 'controlroom:failover'],
      ['failover.write_frozen', 'controlroom:failover'],
      ['failover.completed', 'controlroom:failover'],
      ['failover.jobs_resumed', 'controlroom:failover'],
    ]);
    assert.deepEqual(
      [audited[0].ip, audited[0].user_agent, audited[0].payload.forced],
      ['127.0.0.1', 'failover-test', false]
    );
    const m = await h.metrics();
    assert.equal(m.get(`tms_region_active{region="${WEST}"}`), 1);
    assert.equal(m.get(`tms_region_traffic_weight{region="${WEST}"}`), 100);
    assert.equal(m.get('tms_region_write_frozen'), 0);
  });

  test('a second concurrent cutover is refused; an abort restores the weights and lifts the freeze', async () => {
    const first = await call(h.base, 'POST', '/api/regions/failover', admin, {
      target: EAST,
      steps: [25, 100],
      reason: 'move back',
    });
    assert.equal(first.status, 202);
    const second = await call(h.base, 'POST', '/api/regions/failover', admin, {
      target: EAST,
      reason: 'move back again',
    });
    assert.equal(second.status, 409);
    assert.match(
      second.body.error,
      new RegExp(`a cutover is already in progress \\(event ${first.body.event.id}: manual failover ${WEST} → ${EAST}`)
    );
    const shift = await call(h.base, 'POST', '/api/regions/shift', admin, {
      weights: { [EAST]: 10 },
      reason: 'meanwhile',
    });
    assert.equal(shift.status, 409);
    await waitUntil(async () => weightOf(await routing(), EAST) === 25, 5_000, 'first step');
    const aborted = await call(h.base, 'POST', '/api/regions/cutover/abort', admin, {
      reason: 'us-east-1 not ready after all',
    });
    assert.equal(aborted.status, 200);
    assert.deepEqual([aborted.body.event.outcome, aborted.body.event.details.aborted_by], ['aborted', 'grafana:ana']);
    const r = await routing();
    assert.deepEqual([r.active, weightOf(r, WEST), weightOf(r, EAST), r.write_frozen], [WEST, 100, 0, false]);
    const audited = await auditRows(
      `AND target = 'failover_events/${first.body.event.id}' AND action LIKE 'failover.abort%'`
    );
    assert.deepEqual(
      audited.map((a) => [a.action, a.actor, a.payload.reason]),
      [
        ['failover.abort_requested', 'grafana:ana', 'us-east-1 not ready after all'],
        ['failover.aborted', 'grafana:ana', 'us-east-1 not ready after all'],
      ]
    );
    const nothing = await call(h.base, 'POST', '/api/regions/cutover/abort', admin, { reason: 'again' });
    assert.deepEqual([nothing.status, nothing.body.error], [409, 'no cutover in progress']);
  });

  test('an unhealthy target is refused without force; with force and a reason it proceeds, audited as forced, and is not undone automatically', async () => {
    h.east.mode = 'fail';
    await waitUntil(async () => !(await healthOf(EAST)), 5_000, 'us-east-1 unhealthy');
    const refused = await call(h.base, 'POST', '/api/regions/failover', admin, { target: EAST, reason: 'move back' });
    assert.equal(refused.status, 409);
    assert.match(
      refused.body.error,
      /^refusing to fail over to us-east-1: us-east-1 is unhealthy \(\d+ failed health checks in a row; last error: HTTP 503\)\. An Admin can override with "force": true and a reason$/
    );
    const shift = await call(h.base, 'POST', '/api/regions/shift', admin, {
      weights: { [EAST]: 10 },
      reason: 'a little',
    });
    assert.equal(shift.status, 409);
    assert.match(shift.body.error, /^refusing to shift traffic to us-east-1/);

    const forced = await call(h.base, 'POST', '/api/regions/failover', admin, {
      target: EAST,
      steps: [100],
      force: true,
      reason: 'health endpoint broken, region serves fine',
    });
    assert.equal(forced.status, 202);
    assert.equal(forced.body.event.forced, true);
    await waitUntil(async () => (await routing()).active === EAST, 5_000, 'forced failover');
    // The checks keep failing and us-west-2 is healthy, but the Admin's override stands.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await routing()).active, EAST);
    const audited = await auditRows(`AND target = 'failover_events/${forced.body.event.id}'`);
    const override = audited.find((a) => a.action === 'failover.safety_override');
    assert.ok(override, 'the override is audited');
    assert.deepEqual(
      [override.actor, override.payload.region, override.payload.reason],
      ['grafana:ana', EAST, 'health endpoint broken, region serves fine']
    );
    assert.equal(audited.find((a) => a.action === 'failover.requested')?.payload.forced, true);

    // Once the region has recovered and fails again, automatic failover is back in force.
    h.east.mode = 'ok';
    await waitUntil(async () => healthOf(EAST), 5_000, 'us-east-1 recovered');
    h.east.mode = 'fail';
    await waitUntil(async () => (await routing()).active === WEST, 5_000, 'automatic failover to us-west-2');
    h.east.mode = 'ok';
  });
});
