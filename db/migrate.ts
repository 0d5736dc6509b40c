import path from 'node:path';
import { Logger as WorkerLogger, runMigrations as runWorkerMigrations } from 'graphile-worker';
import { runner } from 'node-pg-migrate';
import { projectRoot } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';

export const migrationsDir = path.join(projectRoot, 'db', 'migrations');

const quietWorkerLogger = new WorkerLogger(() => () => undefined);

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
  // The job queue keeps its own schema (graphile_worker) and versions it itself.
  await runWorkerMigrations({ connectionString: databaseUrl, logger: quietWorkerLogger });
  return applied.map((m) => m.name);
}
