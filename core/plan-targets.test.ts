import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { loadSpec } from '../alerting/slo/spec.ts';
import { projectRoot } from './config.ts';
import { formatPlanValue, PLAN_TARGETS, planValue, README_TABLE_HEADER, readmeRow } from './plan-targets.ts';

const readme = () => fs.readFile(path.join(projectRoot, 'README.md'), 'utf8');

/** The first Markdown table after `heading`: its lines, header and separator included. */
function tableAfter(text: string, heading: string): string[] {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.trim() === heading);
  assert.ok(at >= 0, `README has no "${heading}" heading`);
  const first = lines.findIndex((l, i) => i > at && l.startsWith('|'));
  const table: string[] = [];
  for (let i = first; i < lines.length && lines[i]!.startsWith('|'); i++) table.push(lines[i]!);
  return table;
}

test('the README "Plan targets" table is exactly core/plan-targets.ts', async () => {
  const table = tableAfter(await readme(), '## Plan targets');
  const expected = [...README_TABLE_HEADER, ...PLAN_TARGETS.map(readmeRow)];
  const missing = expected.filter((row) => !table.includes(row));
  const unexpected = table.filter((row) => !expected.includes(row));
  assert.deepEqual(
    { missing, unexpected },
    { missing: [], unexpected: [] },
    'update the README table (expected rows are listed as missing)'
  );
  assert.deepEqual(table, expected, 'same rows, same order');
});

test('every plan target is unique and enforced somewhere outside its module', async () => {
  const keys = PLAN_TARGETS.map((t) => t.key);
  assert.equal(new Set(keys).size, keys.length, 'duplicate keys');
  const sources: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (
        /\.(ts|yaml|yml|json)$/.test(entry.name) &&
        !/plan-targets(\.test)?\.ts$/.test(entry.name) &&
        !entry.name.endsWith('.test.ts')
      ) {
        sources.push(await fs.readFile(full, 'utf8'));
      }
    }
  };
  for (const dir of ['alerting', 'billing', 'control', 'core', 'dashboards', 'db', 'exporter'])
    await walk(path.join(projectRoot, dir));
  const unused = keys.filter((k) => !sources.some((text) => text.includes(`plan.${k}`) || text.includes(`'${k}'`)));
  assert.deepEqual(unused, [], 'targets nothing reads (a README row must name a number the code enforces)');
});

test('the README SLO table states the objectives alerting/slos.yaml resolves from the plan targets', async () => {
  const rows = tableAfter(await readme(), '## SLOs and alerts').slice(2);
  const objectiveOf = new Map(
    rows.map((r) => r.split('|').map((c) => c.trim())).map((cells) => [cells[1]!.replaceAll('`', ''), cells[3]!])
  );
  const spec = await loadSpec();
  assert.deepEqual([...objectiveOf.keys()].sort(), spec.slos.map((s) => s.name).sort(), 'one README row per SLO');
  for (const slo of spec.slos) {
    const stated = objectiveOf.get(slo.name)!;
    const expected = formatPlanValue({ value: slo.objective, unit: 'ratio' });
    assert.ok(stated.startsWith(expected), `${slo.name}: README says "${stated}", the spec ${expected}`);
  }
  assert.equal(spec.slos.find((s) => s.name === 'availability')?.objective, planValue('availability_objective'));
  assert.equal(spec.slos.find((s) => s.name === 'agent_success')?.objective, planValue('agent_success_objective'));
});

test('values are written as the README writes them', () => {
  assert.equal(formatPlanValue({ value: 0.9995, unit: 'ratio' }), '99.95%');
  assert.equal(formatPlanValue({ value: 0.5, unit: 'seconds' }), '500 ms');
  assert.equal(formatPlanValue({ value: 60, unit: 'seconds' }), '60 s');
  assert.equal(formatPlanValue({ value: 14400, unit: 'seconds' }), '4 h');
  assert.equal(formatPlanValue({ value: 5400, unit: 'seconds' }), '5400 s');
  assert.equal(formatPlanValue({ value: 1, unit: 'business_days' }), '1 business day');
  assert.equal(formatPlanValue({ value: 3, unit: 'business_days' }), '3 business days');
  assert.equal(formatPlanValue({ value: 299, unit: 'dollars' }), '$299');
  assert.equal(formatPlanValue({ value: 1, unit: 'switch' }), 'on');
  assert.throws(() => planValue('no_such_target'), /unknown plan target "no_such_target"/);
});
