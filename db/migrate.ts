import path from 'node:path';
import { runner } from 'node-pg-migrate';
import { projectRoot } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';

export const migrationsDir = path.join(projectRoot, 'db', 'migrations');

/** Applies every pending migration in one transaction, under node-pg-migrate's advisory lock. */
export async function migrate(databaseUrl: string, logger?: Logger): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir: migrationsDir,
    direction: 'up',
    migrationsTable: 'pgmigrations',
    migrationsSchema: 'controlroom',
    createMigrationsSchema: true,
    singleTransaction: true,
    checkOrder: true,
    advisoryLockMode: 'wait',
    log: (message: string) => logger?.debug({ migration: message }, 'migrate'),
  });
  return applied.map((m) => m.name);
}
