import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { projectRoot } from '../../core/config.ts';

test('the deploy workflow cannot deploy without passing the release freeze gate', async () => {
  const dir = path.join(projectRoot, '.github', 'workflows');
  const deploy = YAML.parse(await fs.readFile(path.join(dir, 'deploy.yml'), 'utf8'));
  const gate = YAML.parse(await fs.readFile(path.join(dir, 'release-freeze-gate.yml'), 'utf8'));
  assert.equal(deploy.jobs.deploy.needs, 'release-freeze');
  assert.equal(deploy.jobs['release-freeze'].uses, './.github/workflows/release-freeze-gate.yml');
  assert.equal(deploy.jobs.deploy.environment, 'production');
  const steps = gate.jobs['release-freeze'].steps as Array<{ run?: string }>;
  assert.ok(steps.some((s) => s.run === 'bash scripts/check-freeze.sh'));
  assert.ok('workflow_call' in gate.on);
});
