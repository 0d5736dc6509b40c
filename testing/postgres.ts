import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createPool, type Pool } from '../core/db.ts';
import { createDatabaseIfMissing, startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../db/embedded.ts';
import { migrate } from '../db/migrate.ts';

/**
 * Throwaway real Postgres for tests. `npm test` (testing/run-tests.ts) starts one cluster for the whole run
 * and passes its admin URL in CONTROLROOM_TEST_PG_ADMIN_URL; a test file run on its own starts a private
 * cluster. Either way each test database is a copy of a migrated template, so it starts empty and fast.
 */
export const TEMPLATE_DB = 'controlroom_template';

export interface TestDatabase {
  url: string;
  pool: Pool;
  adminUrl: string;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

let privateCluster: Promise<{ adminUrl: string; handle: EmbeddedPostgresHandle }> | undefined;

export async function startTestCluster(): Promise<{ adminUrl: string; handle: EmbeddedPostgresHandle }> {
  const base = await fs.mkdtemp(path.join(os.tmpdir(), 'controlroom-pg-'));
  await fs.chmod(base, 0o755);
  const port = await freePort();
  const handle = await startEmbeddedPostgres({
    dataDir: path.join(base, 'data'),
    port,
    persistent: false,
    database: TEMPLATE_DB,
  });
  const adminUrl = handle.url.replace(/\/[^/]+$/, '/postgres');
  await migrate(handle.url);
  // The handle removes the data directory when it stops; the directory made here to hold it goes too
  // (hundreds of runs otherwise leave as many empty controlroom-pg-* directories in /tmp).
  const stop = handle.stop;
  let stopping: Promise<void> | null = null;
  const stopAndClean = () => (stopping ??= stop().finally(() => fs.rm(base, { recursive: true, force: true })));
  return { adminUrl, handle: { ...handle, stop: stopAndClean } };
}

async function adminUrl(): Promise<string> {
  const shared = process.env.CONTROLROOM_TEST_PG_ADMIN_URL;
  if (shared) return shared;
  privateCluster ??= startTestCluster().then((cluster) => {
    // When the file's work is done, stop the cluster and remove its files; if the process exits another
    // way, at least stop it (the signal is sent synchronously).
    process.once('beforeExit', () => void cluster.handle.stop());
    process.once('exit', () => void cluster.handle.stop());
    return cluster;
  });
  return (await privateCluster).adminUrl;
}

export async function createTestDatabase(options: { poolMax?: number } = {}): Promise<TestDatabase> {
  const admin = await adminUrl();
  const name = `test_${randomBytes(6).toString('hex')}`;
  await createDatabaseIfMissing(admin, name, TEMPLATE_DB);
  const url = admin.replace(/\/[^/]+$/, `/${name}`);
  const pool = createPool(url, {
    max: options.poolMax ?? 4,
    statementTimeoutMs: 30_000,
    applicationName: 'controlroom-test',
  });
  return {
    url,
    pool,
    adminUrl: admin,
    async drop() {
      await pool.end();
      const client = new pg.Client({ connectionString: admin });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      await client.end();
    },
  };
}

export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))
      );
    });
  });
}
