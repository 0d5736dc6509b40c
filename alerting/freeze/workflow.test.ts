import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { projectRoot } from '../../core/config.ts';

test('the deploy workflow cannot deploy without passing the release freeze gate and the test command', async () => {
  const dir = path.join(projectRoot, '.github', 'workflows');
  const deploy = YAML.parse(await fs.readFile(path.join(dir, 'deploy.yml'), 'utf8'));
  const gate = YAML.parse(await fs.readFile(path.join(dir, 'release-freeze-gate.yml'), 'utf8'));
  assert.deepEqual([...deploy.jobs.deploy.needs].sort(), ['release-freeze', 'test']);
  assert.ok((deploy.jobs.test.steps as Array<{ run?: string }>).some((s) => s.run === 'bash .ci/run'));
  assert.equal(deploy.jobs['release-freeze'].uses, './.github/workflows/release-freeze-gate.yml');
  assert.equal(deploy.jobs.deploy.environment, 'production');
  const steps = gate.jobs['release-freeze'].steps as Array<{ run?: string }>;
  assert.ok(steps.some((s) => s.run === 'bash scripts/check-freeze.sh'));
  assert.ok('workflow_call' in gate.on);
});
