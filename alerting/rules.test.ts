import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { projectRoot } from '../core/config.ts';
import { ruleFiles as allRuleFiles } from './rule-files.ts';

const run = promisify(execFile);
const PROMTOOL = process.env.PROMTOOL_BIN ?? '/usr/bin/promtool';
const ruleFiles = allRuleFiles();

test('promtool check rules accepts every rule file', async () => {
  const { stdout } = await run(PROMTOOL, ['check', 'rules', ...ruleFiles]);
  assert.equal((stdout.match(/SUCCESS/g) ?? []).length, ruleFiles.length, stdout);
});

// promtool evaluates every rule at every step of every case (days of data for the budget tests): minutes of
// CPU on a loaded machine, so the bound is generous.
test(
  'promtool test rules: every alert fires when it should and stays silent otherwise',
  { timeout: 600_000 },
  async () => {
    const dir = path.join(projectRoot, 'alerting', 'tests');
    const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.test.yml')).sort();
    assert.ok(files.length >= 10, `only ${files.length} promtool test files`);
    const result = await run(PROMTOOL, ['test', 'rules', ...files], { cwd: dir, maxBuffer: 16 * 1024 * 1024 }).catch(
      (error: { stdout: string; stderr: string }) =>
        assert.fail(`promtool test rules failed:\n${error.stdout}\n${error.stderr}`)
    );
    assert.equal((result.stdout.match(/SUCCESS/g) ?? []).length, files.length, result.stdout);
  }
);

test('every alert in the rule files has promtool tests', async () => {
  const alerts = new Set<string>();
  for (const file of ruleFiles)
    for (const m of (await fs.readFile(file, 'utf8')).matchAll(/^\s*- alert: (\w+)/gm)) alerts.add(m[1]!);
  const dir = path.join(projectRoot, 'alerting', 'tests');
  const tested = new Set<string>();
  for (const f of await fs.readdir(dir)) {
    for (const m of (await fs.readFile(path.join(dir, f), 'utf8')).matchAll(/alertname: (\w+)/g)) tested.add(m[1]!);
  }
  assert.deepEqual(
    [...alerts].filter((a) => !tested.has(a)),
    []
  );
});
