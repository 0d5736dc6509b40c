import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../core/config.ts';
import { startTestCluster } from './postgres.ts';

/**
 * `npm test`: one throwaway Postgres cluster for the whole run (each test file copies a migrated template
 * database from it), then Node's test runner over every *.test.ts outside node_modules. In plugin/ (the
 * Grafana app's workspace, whose src/ has Jest tests) only plugin/harness is searched: its browser tests
 * of the built plugin are node:test files like the rest.
 */
const SKIP = new Set(['node_modules', '.git', '.data', 'dist']);
const ONLY_UNDER: Record<string, string[]> = { plugin: ['harness'] };

function testFiles(dir: string): string[] {
  const only = ONLY_UNDER[path.relative(projectRoot, dir)];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return SKIP.has(entry.name) || (only && !only.includes(entry.name)) ? [] : testFiles(full);
    return entry.name.endsWith('.test.ts') ? [path.relative(projectRoot, full)] : [];
  });
}

const requested = process.argv.slice(2);
const files = requested.length > 0 ? requested : testFiles(projectRoot).sort();
const { adminUrl, handle } = await startTestCluster();
const args = ['--import', 'tsx', '--test', '--test-reporter=spec', ...files];
const child = spawn(process.execPath, args, {
  cwd: projectRoot,
  stdio: 'inherit',
  env: { ...process.env, CONTROLROOM_TEST_PG_ADMIN_URL: adminUrl },
});
const code = await new Promise<number>((resolve) => child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
await handle.stop();
process.exit(code);
