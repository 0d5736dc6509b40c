import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import YAML from 'yaml';
import { projectRoot } from '../core/config.ts';

const run = promisify(execFile);

test('docker-compose.yml is valid for docker-compose and runs Postgres, the service and the demo', async () => {
  const { stdout } = await run('docker-compose', ['-f', path.join(projectRoot, 'docker-compose.yml'), 'config'], { cwd: projectRoot });
  const config = YAML.parse(stdout) as { services: Record<string, { command?: string; ports?: unknown[]; depends_on?: Record<string, unknown> }> };
  assert.deepEqual(Object.keys(config.services).sort(), ['controlroom', 'demo', 'postgres']);
  assert.match(String(config.services.controlroom!.command), /bin\/controlroom\.mjs serve/);
  assert.ok(config.services.controlroom!.depends_on?.postgres, 'the service waits for Postgres');
  assert.ok(config.services.demo!.depends_on?.controlroom, 'demo traffic waits for the migrated service');
});
