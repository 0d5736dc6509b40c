import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { test } from 'node:test';
import YAML from 'yaml';
import { planValue } from '../../core/plan-targets.ts';
import { BURN_TIERS, generateRules, generatedPath, WINDOWS } from './generate.ts';
import { loadSpec, parseSpec } from './spec.ts';

test('the committed rules are what alerting/slos.yaml generates (run `npm run rules:generate`)', async () => {
  const expected = generateRules(await loadSpec());
  const committed = await fs.readFile(generatedPath, 'utf8');
  assert.ok(committed === expected, 'alerting/generated/slo-rules.yml is out of date with alerting/slos.yaml');
});

test('every SLO gets every window, budget, burn rates and all burn tiers', async () => {
  const spec = await loadSpec();
  const { groups } = YAML.parse(generateRules(spec)) as {
    groups: Array<{ name: string; rules: Array<{ record?: string; alert?: string; labels: Record<string, string> }> }>;
  };
  assert.deepEqual(
    groups.map((g) => g.name),
    spec.slos.map((s) => `slo-${s.name}`)
  );
  for (const group of groups) {
    const records = new Set(group.rules.flatMap((r) => (r.record ? [r.record] : [])));
    for (const w of WINDOWS) {
      assert.ok(records.has(`slo:sli_error:ratio_rate${w}`), `${group.name} ratio ${w}`);
      assert.ok(records.has(`slo:burn_rate:${w}`), `${group.name} burn ${w}`);
    }
    assert.ok(records.has('slo:error_budget_remaining:ratio'));
    // A rolling-hour SLO records its own window's good ratio (the SLO card's "last hour"); others do not.
    const rollingHour = spec.slos.find((s) => `slo-${s.name}` === group.name)?.rolling_hour_alert ?? false;
    assert.equal(
      records.has('slo:sli_success:ratio_rate1h'),
      rollingHour,
      `${group.name} slo:sli_success:ratio_rate1h`
    );
    const alerts = group.rules.filter((r) => r.alert);
    for (const tier of BURN_TIERS) {
      const alert = alerts.find((a) => a.alert === tier.alert);
      assert.equal(alert?.labels.severity, tier.severity, `${group.name} ${tier.alert}`);
    }
    assert.ok(alerts.some((a) => a.alert === 'ErrorBudgetHalfSpent'));
    for (const a of alerts) assert.match(a.labels.severity ?? '', /^P[123]$/);
  }
});

test('a bad spec is refused with the field named', () => {
  const base = {
    version: 1,
    slos: [
      {
        name: 'x',
        description: 'd',
        objective: 0.99,
        period: '30d',
        sli: { events: { errors: 'sum(rate(e[{{window}}]))', total: 'sum(rate(t[{{window}}]))' } },
        traffic_floor: 1,
      },
    ],
  };
  const withSlo = (patch: Record<string, unknown>) =>
    YAML.stringify({ ...base, slos: [{ ...base.slos[0], ...patch }] });
  assert.doesNotThrow(() => parseSpec(YAML.stringify(base)));
  assert.throws(() => parseSpec(withSlo({ objective: 1.5 })), /slos\.0\.objective/);
  assert.throws(() => parseSpec(withSlo({ name: 'Bad-Name' })), /slos\.0\.name/);
  assert.throws(() => parseSpec(withSlo({ traffic_floor: undefined })), /traffic_floor/);
  assert.throws(() => parseSpec(withSlo({ sli: { events: { errors: 'sum(rate(e[5m]))', total: 't' } } })), /window/);
  assert.throws(() => parseSpec(YAML.stringify({ ...base, slos: [base.slos[0], base.slos[0]] })), /unique/);
  assert.throws(
    () => parseSpec(withSlo({ objective: 'plan.no_such_target' })),
    /slos\.0\.objective: "plan\.no_such_target" is neither/
  );
  assert.throws(
    () =>
      parseSpec(
        withSlo({
          sli: {
            events: { errors: 'sum(rate(e{le="{{plan.nope}}"}[{{window}}]))', total: 'sum(rate(t[{{window}}]))' },
          },
        })
      ),
    /slos\.0\.sli\.events\.errors: unknown plan target \{\{plan\.nope\}\}/
  );
  assert.throws(
    () => parseSpec(withSlo({ release_gate: { min_good_ratio: 0.98 } })),
    /slos\.0\.release_gate\.unreadable/
  );
  assert.throws(
    () =>
      parseSpec(
        withSlo({ sli: { time_slice: { bad: 'x' } }, release_gate: { min_good_ratio: 0.98, unreadable: 'vector(1)' } })
      ),
    /release_gate: a release_gate needs an events SLI/
  );
});

type Rule = { record?: string; alert?: string; expr: string; for?: string; labels: Record<string, string> };
const groupsOf = async () =>
  new Map(
    (YAML.parse(generateRules(await loadSpec())) as { groups: Array<{ name: string; rules: Rule[] }> }).groups.map(
      (g) => [g.name, g.rules] as const
    )
  );

test('the objectives and bounds in the generated rules are the plan targets (core/plan-targets.ts)', async () => {
  const spec = await loadSpec();
  const objective = (name: string) => spec.slos.find((s) => s.name === name)?.objective;
  assert.equal(objective('availability'), planValue('availability_objective'));
  assert.equal(objective('agent_success'), planValue('agent_success_objective'));
  for (const name of ['quote_latency', 'quote_latency_cached', 'quote_latency_failover'])
    assert.equal(objective(name), planValue('quote_p95_quantile'), name);
  const groups = await groupsOf();
  const exprOf = (group: string, record: string) => groups.get(group)?.find((r) => r.record === record)?.expr ?? '';
  assert.equal(exprOf('slo-availability', 'slo:objective:ratio'), 'vector(0.9995)');
  assert.equal(
    exprOf('slo-availability', 'slo:burn_rate:1h'),
    'slo:sli_error:ratio_rate1h{slo="availability"} / 0.0005'
  );
  assert.equal(
    exprOf('slo-agent_success', 'slo:burn_rate:1h'),
    'slo:sli_error:ratio_rate1h{slo="agent_success"} / 0.01'
  );
  assert.match(exprOf('slo-quote_latency', 'slo:sli_error:ratio_rate1h'), /le="0\.5"/);
  assert.match(exprOf('slo-quote_latency_cached', 'slo:sli_error:ratio_rate1h'), /le="0\.2"/);
  assert.match(
    exprOf('slo-quote_latency_failover', 'slo:sli_error:rate_during'),
    /le="0\.6"\}\[1m\].*\n *and on \(\) \(\(max\(tms_region_cutover_in_progress\)\) == 1\)/s
  );
  assert.equal(
    exprOf('slo-agent_queue', 'slo:sli_bad:indicator'),
    'max(tms_agent_task_oldest_pending_age_seconds) >= bool 60'
  );
  for (const [name, rules] of groups) {
    const half = rules.find((r) => r.alert === 'ErrorBudgetHalfSpent');
    assert.match(half?.expr ?? '', /slo:burn_rate:30d\{slo="[a-z_]+"\} > 0\.5(\n|$)/, name);
  }
});

test('the release gate: below 98% over the floor, or unreadable, freezes; only agent_success has one', async () => {
  const groups = await groupsOf();
  const gates = [...groups.values()].flat().filter((r) => r.labels.gate === 'release');
  assert.deepEqual(
    gates.map((r) => r.alert),
    ['ReleaseGateAgentSuccess', 'ReleaseGateAgentSuccessUnreadable']
  );
  const [low, unreadable] = gates as [Rule, Rule];
  assert.equal(
    low.expr,
    `1 - slo:sli_error:ratio_rate1h{slo="agent_success"} < ${planValue('release_gate_agent_success')}\n  and slo:sli_total:rate1h{slo="agent_success"} * 3600 >= 20`
  );
  assert.deepEqual(low.labels, { severity: 'P2', slo: 'agent_success', action: 'freeze', gate: 'release' });
  assert.equal(low.for, undefined);
  assert.match(unreadable.expr, /^vector\(1\) unless on \(\)/);
  assert.equal(unreadable.for, '2m');
});

test("an SLI counted only during a condition has no data outside it: every window sums the condition's samples", async () => {
  const rules = (await groupsOf()).get('slo-quote_latency_failover')!;
  for (const w of WINDOWS) {
    const ratio = rules.find((r) => r.record === `slo:sli_error:ratio_rate${w}`)!.expr;
    assert.equal(
      ratio,
      `sum_over_time(slo:sli_error:rate_during{slo="quote_latency_failover"}[${w}])\n/\nsum_over_time(slo:sli_total:rate_during{slo="quote_latency_failover"}[${w}])`
    );
  }
  assert.ok(rules.some((r) => r.alert === 'SLORollingHourBelowObjective'));
});
