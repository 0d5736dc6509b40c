import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { projectRoot } from '../core/config.ts';

const run = promisify(execFile);

/** The secrets the compose stack needs from the environment; none has a default. */
export const COMPOSE_SECRETS = [
  'CONTROLROOM_API_SECRET',
  'ALERTMANAGER_WEBHOOK_TOKEN',
  'GRAFANA_WEBHOOK_TOKEN',
  'GRAFANA_WEBHOOK_HMAC_SECRET',
  'GF_SECURITY_ADMIN_PASSWORD',
  'POSTGRES_PASSWORD',
  'TMS_DB_READER_PASSWORD',
  'EVIDENCE_SIGNING_KEY',
] as const;

/** Generated-looking values, one per secret, as `openssl rand -hex` would give (36 characters). */
export const GENERATED_SECRETS: Record<string, string> = Object.fromEntries(
  COMPOSE_SECRETS.map((name, i) => [name, `${i}f3a9c1e7b5d2`.repeat(3).slice(0, 36)])
);

/**
 * `docker-compose config` (v1, offline) over the given files, resolved with `vars` on top of this process's
 * environment less the secrets and the COMPOSE_* selectors (so the caller's shell cannot change the answer).
 * Rejects with docker-compose's stderr when it refuses the files.
 */
export async function composeConfig<Compose>(
  files: readonly string[] = ['docker-compose.yml'],
  vars: Record<string, string> = GENERATED_SECRETS
): Promise<Compose> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of [...COMPOSE_SECRETS, 'COMPOSE_FILE', 'COMPOSE_PROFILES']) delete env[name];
  const args = files.flatMap((f) => ['-f', path.join(projectRoot, f)]);
  const { stdout } = await run('docker-compose', [...args, 'config'], { cwd: projectRoot, env: { ...env, ...vars } });
  return YAML.parse(stdout) as Compose;
}
