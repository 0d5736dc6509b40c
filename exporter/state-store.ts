import type { Pool, PoolClient } from '../core/db.ts';
import { withTransaction } from '../core/db.ts';

/** SQLSTATE serialization_failure: the state row was committed by the other instance since our snapshot. */
const SERIALIZATION_FAILURE = '40001';
/** A pair refreshes each collector at most twice per interval: a few attempts always see the step through. */
const MAX_ATTEMPTS = 5;

/**
 * Runs one refresh step of a collector inside a REPEATABLE READ transaction that holds the collector's
 * state row locked: the rows read and the state written commit together, and a second exporter instance
 * waits instead of counting the same rows twice. The waiter then fails to serialise (the row changed
 * after its snapshot); that is routine on a pair (both instances refresh on the same interval), not a
 * collector error, so the step runs again in a fresh snapshot that continues from the other's state, and
 * both instances publish the same totals.
 */
export async function withCollectorState<S, R>(
  pool: Pool,
  collector: string,
  initial: () => S,
  work: (client: PoolClient, state: S) => Promise<{ state: S; result: R }>
): Promise<R> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await collectorStep(pool, collector, initial, work);
    } catch (error) {
      if (attempt >= MAX_ATTEMPTS || (error as { code?: string }).code !== SERIALIZATION_FAILURE) throw error;
    }
  }
}

function collectorStep<S, R>(
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
