import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { projectRoot } from './config.ts';

/**
 * The layer rule (README, Architecture): core ← features ← cli. core/ imports no feature; a feature never
 * imports cli/ (the assembly) or testing/; alerting's rooms (receiver/, slack/, freeze/) import from the
 * level above and core/, never from each other. Tests (*.test.ts) are exempt: they drive a feature, or the
 * whole service, from outside, and may assemble it with cli/ and testing/.
 */
const FEATURES = ['exporter', 'alerting', 'billing', 'control', 'evidence'];
const ALERTING_ROOMS = ['alerting/receiver', 'alerting/slack', 'alerting/freeze', 'alerting/incidents'];

/** Every relative import and re-export of a TypeScript file, resolved to a path from the project root. */
export function importsOf(file: string, source: string): string[] {
  const specifiers = [
    ...source.matchAll(
      /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g
    ),
  ].map((m) => m[1] ?? m[2]!);
  return specifiers
    .filter((s) => s.startsWith('.'))
    .map((s) => path.relative(projectRoot, path.resolve(projectRoot, path.dirname(file), s)));
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(path.join(projectRoot, dir), { withFileTypes: true }).flatMap((entry) => {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' || entry.name.startsWith('.') ? [] : sourceFiles(rel);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [rel] : [];
  });
}

const under = (file: string, dir: string) => file === dir || file.startsWith(`${dir}/`);

/** Each breach of the rule, as "file → import (why)". */
export function layerViolations(files: ReadonlyMap<string, string>): string[] {
  const violations: string[] = [];
  for (const [file, source] of files) {
    for (const target of importsOf(file, source)) {
      const breach = (why: string) => violations.push(`${file} → ${target} (${why})`);
      if (under(file, 'core') && !under(target, 'core')) breach('core/ imports only core/');
      if (FEATURES.some((f) => under(file, f))) {
        if (under(target, 'cli')) breach('a feature never imports cli/');
        if (under(target, 'testing')) breach('a feature never imports testing/');
      }
      const room = ALERTING_ROOMS.find((r) => under(file, r));
      const other = ALERTING_ROOMS.find((r) => under(target, r));
      if (room && other && room !== other)
        breach("alerting's rooms import from alerting/ and core/, not from each other");
    }
  }
  return violations;
}

const read = (files: string[]) => new Map(files.map((f) => [f, fs.readFileSync(path.join(projectRoot, f), 'utf8')]));

test('no import runs up the layers: core ← features ← cli, and alerting rooms never import each other', () => {
  const files = read(['core', ...FEATURES].flatMap(sourceFiles));
  assert.ok(files.has('alerting/worker.ts') && files.has('core/config.ts'), 'the scan found the service sources');
  assert.deepEqual(layerViolations(files), []);
});

test('the check sees imports, re-exports and dynamic imports, and reports each kind of breach', () => {
  const files = new Map([
    ['core/config.ts', "import { z } from 'zod';\nimport { billingConfigShape } from '../billing/config.ts';"],
    ['core/db.ts', "import type {\n  Pool,\n} from './pool.ts';"],
    [
      'billing/jobs.ts',
      "export { loadConfig } from '../cli/config.ts';\nconst t = await import('../testing/postgres.ts');",
    ],
    [
      'alerting/slack/pager.ts',
      "import type { AlertEventRow } from '../receiver/events.ts';\nimport { x } from '../events.ts';",
    ],
    [
      'alerting/worker.ts',
      "import { pagerTasks } from './slack/pager.ts';\nimport { freezeTasks } from './freeze/jobs.ts';",
    ],
  ]);
  assert.deepEqual(importsOf('core/db.ts', files.get('core/db.ts')!), ['core/pool.ts']);
  assert.deepEqual(layerViolations(files), [
    'core/config.ts → billing/config.ts (core/ imports only core/)',
    'billing/jobs.ts → cli/config.ts (a feature never imports cli/)',
    'billing/jobs.ts → testing/postgres.ts (a feature never imports testing/)',
    "alerting/slack/pager.ts → alerting/receiver/events.ts (alerting's rooms import from alerting/ and core/, not from each other)",
  ]);
});

test('every feature has one entry point, create…Feature(deps), in its index.ts', async () => {
  const entries: Record<string, string> = {
    exporter: 'createExporterFeature',
    alerting: 'createAlertingFeature',
    billing: 'createBillingFeature',
    'control/bulk': 'createBulkRatingFeature',
    'control/failover': 'createFailoverFeature',
    'control/rating': 'createRatingFeature',
    'control/limits': 'createLimitsFeature',
    evidence: 'createEvidenceFeature',
  };
  for (const [feature, entry] of Object.entries(entries)) {
    const exports = (await import(path.join(projectRoot, feature, 'index.ts'))) as Record<string, unknown>;
    const creators = Object.keys(exports).filter((name) => /^create\w*Feature$/.test(name));
    assert.deepEqual(creators, [entry], `${feature}/index.ts exports exactly one create…Feature`);
    assert.equal(typeof exports[entry], 'function');
  }
  const services = fs.readFileSync(path.join(projectRoot, 'cli/services.ts'), 'utf8');
  for (const entry of Object.values(entries))
    assert.match(services, new RegExp(`^  ${entry},$`, 'm'), `cli/services.ts lists ${entry}`);
});
