import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { test } from 'node:test';
import YAML from 'yaml';
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
    spec.slos.map((s) => `slo-${s.name}`),
  );
  for (const group of groups) {
    const records = new Set(group.rules.flatMap((r) => (r.record ? [r.record] : [])));
    for (const w of WINDOWS) {
      assert.ok(records.has(`slo:sli_error:ratio_rate${w}`), `${group.name} ratio ${w}`);
      assert.ok(records.has(`slo:burn_rate:${w}`), `${group.name} burn ${w}`);
    }
    assert.ok(records.has('slo:error_budget_remaining:ratio'));
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
  const withSlo = (patch: Record<string, unknown>) => YAML.stringify({ ...base, slos: [{ ...base.slos[0], ...patch }] });
  assert.doesNotThrow(() => parseSpec(YAML.stringify(base)));
  assert.throws(() => parseSpec(withSlo({ objective: 1.5 })), /slos\.0\.objective/);
  assert.throws(() => parseSpec(withSlo({ name: 'Bad-Name' })), /slos\.0\.name/);
  assert.throws(() => parseSpec(withSlo({ traffic_floor: undefined })), /traffic_floor/);
  assert.throws(() => parseSpec(withSlo({ sli: { events: { errors: 'sum(rate(e[5m]))', total: 't' } } })), /window/);
  assert.throws(() => parseSpec(YAML.stringify({ ...base, slos: [base.slos[0], base.slos[0]] })), /unique/);
});
