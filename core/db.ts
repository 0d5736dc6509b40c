import pg from 'pg';
import type { SharedConfig as Config } from './config.ts';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

export interface PoolOptions {
  max: number;
  statementTimeoutMs: number;
  applicationName: string;
  /**
   * Client-side limit on waiting for a query's answer (PG_QUERY_TIMEOUT_MS). Default: the statement
   * timeout plus 5 s, so a slow statement is still ended by the server first.
   */
  queryTimeoutMs?: number;
  /** Client-side limit on getting a connection: a free pool slot, TCP, TLS and authentication (PG_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number;
  /**
   * Keep idle connections open instead of closing them after 10 s idle (pg-pool's default): for a pool
   * whose first statement after a quiet spell must not pay for a new session (see openPool's keepConnections).
   */
  keepConnections?: boolean;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const QUERY_TIMEOUT_MARGIN_MS = 5_000;

/**
 * A small, bounded pool: every statement has a timeout so one slow query cannot pin the process.
 * statement_timeout only helps while the server answers. A database that hangs (accepts connections,
 * answers nothing: a frozen host, a stalled network path) is caught on the client: a query without an
 * answer fails after queryTimeoutMs and a connection that cannot be made fails after connectTimeoutMs,
 * so callers see an outage (the exporter's collect-error counter rises) instead of waiting forever.
 * A connection whose query timed out is discarded, never reused, so the pool recovers with fresh
 * connections as soon as the database answers again.
 */
export function createPool(connectionString: string, options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: options.max,
    statement_timeout: options.statementTimeoutMs,
    query_timeout: options.queryTimeoutMs ?? options.statementTimeoutMs + QUERY_TIMEOUT_MARGIN_MS,
    idle_in_transaction_session_timeout: options.statementTimeoutMs * 3,
    application_name: options.applicationName,
    connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    // 0: never closed for being idle (a broken one is still discarded, and replaced at the next checkout).
    ...(options.keepConnections ? { idleTimeoutMillis: 0 } : {}),
  });
  // An idle client losing its connection must not crash the process; the next checkout reconnects.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Runs `work` on a connection checked out of the pool, and gives it back. `work` may call `markBroken`
 * when the connection can no longer be trusted (a query timed out, a rollback failed): it is then
 * destroyed on release instead of going back to the pool with a query still outstanding.
 */
export async function withClient<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient, markBroken: (error: Error) => void) => Promise<T>
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const markBroken = (error: Error) => {
    broken ??= error;
  };
  // A connection lost while checked out (Postgres stopped or crashed) is emitted as an 'error' event on
  // the client, which the pool does not listen to: unheard, it would crash the process. Heard here, the
  // next statement fails instead, and the caller sees an ordinary error.
  client.on('error', markBroken);
  try {
    return await work(client, markBroken);
  } finally {
    client.off('error', markBroken);
    client.release(broken);
  }
}

/** The three timeouts of a service pool, as configured (PG_STATEMENT_TIMEOUT_MS, PG_QUERY_TIMEOUT_MS, PG_CONNECT_TIMEOUT_MS). */
export const poolTimeouts = (
  config: Pick<Config, 'PG_STATEMENT_TIMEOUT_MS' | 'PG_QUERY_TIMEOUT_MS' | 'PG_CONNECT_TIMEOUT_MS'>
) => ({
  statementTimeoutMs: config.PG_STATEMENT_TIMEOUT_MS,
  ...(config.PG_QUERY_TIMEOUT_MS ? { queryTimeoutMs: config.PG_QUERY_TIMEOUT_MS } : {}),
  connectTimeoutMs: config.PG_CONNECT_TIMEOUT_MS,
});

export type IsolationLevel = 'READ COMMITTED' | 'REPEATABLE READ' | 'SERIALIZABLE';

export async function withTransaction<T>(
  pool: pg.Pool,
  isolation: IsolationLevel,
  work: (client: pg.PoolClient) => Promise<T>
): Promise<T> {
  return withClient(pool, async (client, markBroken) => {
    try {
      await client.query(`BEGIN ISOLATION LEVEL ${isolation}`);
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(markBroken);
      throw error;
    }
  });
}
