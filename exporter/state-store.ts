import type { Pool, PoolClient } from '../core/db.ts';
import { withTransaction } from '../core/db.ts';

/**
 * Runs one refresh step of a collector inside a REPEATABLE READ transaction that holds the collector's
 * state row locked: the rows read and the state written commit together, and a second exporter instance
 * waits (or fails to serialise and retries later) instead of counting the same rows twice.
 */
export async function withCollectorState<S, R>(
  pool: Pool,
  collector: string,
  initial: () => S,
  work: (client: PoolClient, state: S) => Promise<{ state: S; result: R }>
): Promise<R> {
  return withTransaction(pool, 'REPEATABLE READ', async (client) => {
    await client.query(
      `INSERT INTO controlroom.exporter_state (collector, state) VALUES ($1, $2) ON CONFLICT (collector) DO NOTHING`,
      [collector, JSON.stringify(initial())]
    );
    const { rows } = await client.query<{ state: S }>(
      `SELECT state FROM controlroom.exporter_state WHERE collector = $1 FOR UPDATE`,
      [collector]
    );
    const { state, result } = await work(client, rows[0]!.state);
    await client.query(`UPDATE controlroom.exporter_state SET state = $2, updated_at = now() WHERE collector = $1`, [
      collector,
      JSON.stringify(state),
    ]);
    return result;
  });
}
