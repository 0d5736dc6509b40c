import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { ruleFiles } from '../alerting/rule-files.ts';

const run = promisify(execFile);

/**
 * The rule groups load into Grafana Mimir's ruler as README's recipe does: every rule file into the one
 * namespace `controlroom`. No registry package provides mimirtool's own checks here, so this applies the
 * ruler's constraints that promtool does not know (group names unique within a namespace, since a second
 * group of the same name replaces the first; a non-empty name; only the keys Mimir's rule-group format
 * accepts) and then promtool's rule check to the groups exactly as they would be loaded.
 */
const MIMIR_GROUP_KEYS = new Set(['name', 'interval', 'rules', 'source_tenants', 'evaluation_delay', 'limit']);

test('every rule group is Mimir-valid when all files load into one namespace', async () => {
  const groups: Array<Record<string, unknown>> = [];
  for (const file of ruleFiles()) {
    const doc = YAML.parse(await fs.readFile(file, 'utf8')) as { groups?: Array<Record<string, unknown>> };
    assert.ok(Array.isArray(doc.groups) && doc.groups.length > 0, `${file} has rule groups`);
    groups.push(...doc.groups);
  }
  const names = groups.map((g) => String(g.name ?? ''));
  assert.deepEqual(
    names.filter((n, i) => n === '' || names.indexOf(n) !== i),
    [],
    'group names empty or repeated in the namespace'
  );
  for (const group of groups)
    for (const key of Object.keys(group))
      assert.ok(
        MIMIR_GROUP_KEYS.has(key),
        `group ${String(group.name)}: key ${key} is not in Mimir's rule-group format`
      );
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'controlroom-mimir-'));
  try {
    // What `mimirtool rules load` sends for the namespace, as one Prometheus rule file.
    const file = path.join(dir, 'controlroom.yml');
    await fs.writeFile(file, YAML.stringify({ groups }));
    const { stdout } = await run('promtool', ['check', 'rules', file]);
    assert.match(stdout, /SUCCESS: \d+ rules found/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
