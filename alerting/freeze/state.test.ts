import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideFreeze, pullRequestVerdict, type FreezeAction, type FreezeTrigger } from './state.ts';

const now = new Date('2026-11-23T12:00:00Z');
const minutesAgo = (m: number) => new Date(now.getTime() - m * 60_000);
const inMinutes = (m: number) => new Date(now.getTime() + m * 60_000);
const policy = { quietPeriodSeconds: 30 * 60 };
const trigger = (t: Partial<FreezeTrigger>): FreezeTrigger => ({
  alertname: 'ErrorBudgetHalfSpent',
  slo: 'availability',
  severity: 'P2',
  firing: true,
  started_at: minutesAgo(60),
  resolved_at: null,
  labels: {},
  ...t,
});
const action = (a: Partial<FreezeAction>): FreezeAction => ({
  id: '1',
  kind: 'freeze',
  reason: 'incident review',
  actor: 'grafana:ana',
  created_at: minutesAgo(5),
  expires_at: null,
  ...a,
});

test('no trigger, no action: not frozen and nothing timed', () => {
  const d = decideFreeze([], [], policy, now);
  assert.deepEqual([d.frozen, d.cause, d.reason, d.nextChangeAt], [false, 'none', 'No release freeze', null]);
});

test('error budget half spent or a P1 SLO page freezes', () => {
  assert.equal(decideFreeze([trigger({})], [], policy, now).cause, 'error_budget');
  const page = decideFreeze(
    [trigger({ alertname: 'SLOBurnRate1h', severity: 'P1', slo: 'quote_latency' })],
    [],
    policy,
    now
  );
  assert.deepEqual(
    [page.frozen, page.cause, page.reason],
    [true, 'slo_page', 'P1 SLO page firing: SLOBurnRate1h (quote_latency)']
  );
});

const gate = (t: Partial<FreezeTrigger> = {}) =>
  trigger({
    alertname: 'ReleaseGateAgentSuccess',
    slo: 'agent_success',
    labels: { slo: 'agent_success', gate: 'release', action: 'freeze' },
    ...t,
  });
const regionDown = (region: string) =>
  trigger({ alertname: 'ActiveRegionDown', slo: null, severity: 'P1', labels: { region } });

test("the plan's release gate freezes with its own cause, below the gate or unreadable", () => {
  const low = decideFreeze([gate()], [], policy, now);
  assert.deepEqual(
    [low.frozen, low.cause, low.reason],
    [true, 'release_gate', 'Release gate: agent_success in the last hour is below 98% (ReleaseGateAgentSuccess)']
  );
  const unknown = decideFreeze([gate({ alertname: 'ReleaseGateAgentSuccessUnreadable' })], [], policy, now);
  assert.deepEqual(
    [unknown.frozen, unknown.cause, unknown.reason],
    [
      true,
      'release_gate',
      'Release gate: agent_success in the last hour cannot be read, so the gate fails closed (ReleaseGateAgentSuccessUnreadable)',
    ]
  );
  // The gate names itself even while the budget is half spent too; it resolves into the quiet period.
  assert.equal(decideFreeze([trigger({}), gate()], [], policy, now).cause, 'release_gate');
  assert.equal(
    decideFreeze([gate({ firing: false, resolved_at: minutesAgo(5) })], [], policy, now).cause,
    'quiet_period'
  );
});

test('the active region down freezes (no deploy while the TMS runs degraded) and names the region', () => {
  const d = decideFreeze([gate(), regionDown('us-east-1')], [], policy, now);
  assert.deepEqual(
    [d.frozen, d.cause, d.reason],
    [
      true,
      'active_region_down',
      'Active region us-east-1 is down: no deploys while the TMS runs degraded (ActiveRegionDown)',
    ]
  );
  const resolved = decideFreeze(
    [regionDown('us-east-1')].map((t) => ({ ...t, firing: false, resolved_at: minutesAgo(1) })),
    [],
    policy,
    now
  );
  assert.deepEqual(
    [resolved.cause, resolved.reason],
    ['quiet_period', 'Resolved; quiet period until 2026-11-23T12:29:00Z (ActiveRegionDown (us-east-1))']
  );
  // An admin may still override it (e.g. to ship the fix for the outage); a manual freeze still wins.
  const override = action({
    kind: 'override',
    reason: 'ship the region fix',
    actor: 'grafana:boss',
    expires_at: inMinutes(30),
  });
  assert.equal(decideFreeze([regionDown('eu')], [override], policy, now).cause, 'override');
  assert.equal(decideFreeze([regionDown('eu')], [action({})], policy, now).cause, 'manual');
});

test('stays frozen for the quiet period after the last trigger resolved, then lifts by itself', () => {
  const resolved = trigger({ firing: false, resolved_at: minutesAgo(10) });
  const quiet = decideFreeze([resolved], [], policy, now);
  assert.deepEqual([quiet.frozen, quiet.cause], [true, 'quiet_period']);
  assert.deepEqual(quiet.nextChangeAt, inMinutes(20));
  assert.match(quiet.reason, /quiet period until 2026-11-23T12:20:00Z/);
  const later = decideFreeze([resolved], [], policy, inMinutes(21));
  assert.deepEqual([later.frozen, later.cause], [false, 'none']);
});

test('a flapping alert does not open the gate: firing again restarts the wait', () => {
  const flapped = [
    trigger({ firing: false, resolved_at: minutesAgo(40) }),
    trigger({ alertname: 'SLOBurnRate6h', severity: 'P1', firing: false, resolved_at: minutesAgo(2) }),
  ];
  const d = decideFreeze(flapped, [], policy, now);
  assert.deepEqual([d.frozen, d.cause, d.nextChangeAt], [true, 'quiet_period', inMinutes(28)]);
});

test('a manual freeze holds until it ends or expires, and an override does not lift it', () => {
  const manual = action({ expires_at: inMinutes(60) });
  const override = action({
    id: '2',
    kind: 'override',
    reason: 'hotfix',
    actor: 'grafana:boss',
    expires_at: inMinutes(30),
  });
  const d = decideFreeze([], [manual, override], policy, now);
  assert.deepEqual([d.frozen, d.cause, d.reason], [true, 'manual', 'Manual freeze by grafana:ana: incident review']);
  assert.deepEqual(d.nextChangeAt, inMinutes(30));
  assert.equal(decideFreeze([], [manual], policy, inMinutes(61)).frozen, false);
});

test('an override lifts an alert-driven freeze until it expires', () => {
  const override = action({
    kind: 'override',
    reason: 'customer launch',
    actor: 'grafana:boss',
    expires_at: inMinutes(45),
  });
  const d = decideFreeze([trigger({})], [override], policy, now);
  assert.deepEqual([d.frozen, d.cause], [false, 'override']);
  assert.equal(d.reason, 'Override by grafana:boss until 2026-11-23T12:45:00Z: customer launch');
  assert.equal(decideFreeze([trigger({})], [override], policy, inMinutes(46)).cause, 'error_budget');
});

test('pull request verdicts: failure while frozen, exempt by label, short enough for GitHub', () => {
  const frozen = decideFreeze([trigger({ slo: 'x'.repeat(300) })], [], policy, now);
  const blocked = pullRequestVerdict(frozen, ['docs'], ['p0-fix', 'security-fix']);
  assert.equal(blocked.state, 'failure');
  assert.ok(blocked.description.length <= 140);
  assert.deepEqual(pullRequestVerdict(frozen, ['security-fix'], ['p0-fix', 'security-fix']), {
    state: 'success',
    description: 'Release freeze: exempt by label security-fix',
  });
  assert.equal(pullRequestVerdict(decideFreeze([], [], policy, now), [], []).state, 'success');
});
