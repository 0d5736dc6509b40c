import pg from 'pg';
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
 *
 * The step commits asynchronously (synchronous_commit = off): it does not wait for the WAL flush, which
 * on a busy disk costs more than the whole step. What a Postgres crash can lose is the last few steps
 * (up to ~3 × wal_writer_delay), never part of one: WAL replays in order, so the state row comes back as
 * an earlier committed state, together with everything that step wrote (usage_daily). Its cursor then
 * still points before the rows those lost steps folded, and the next refresh folds them again: the totals
 * come out the same, and a value published from a lost step is reached again, not undercut (only rows
 * seconds old are re-read, which no retention purges). Another instance that built on a lost step is
 * lost with it, as its commit comes later in the same WAL.
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
    // One round trip in the steady state (the simple protocol takes both statements at once); the row is
    // created only on a collector's first refresh.
    const lockState = `SET LOCAL synchronous_commit = off;
       SELECT state FROM controlroom.exporter_state WHERE collector = ${pg.escapeLiteral(collector)} FOR UPDATE`;
    const stateOf = (results: unknown) => (results as [unknown, { rows: { state: S }[] }])[1].rows[0]?.state;
    let current = stateOf(await client.query(lockState));
    if (current === undefined) {
      await client.query(
        `INSERT INTO controlroom.exporter_state (collector, state) VALUES ($1, $2) ON CONFLICT (collector) DO NOTHING`,
        [collector, JSON.stringify(initial())]
      );
      current = stateOf(await client.query(lockState));
      // Inserted by another instance after this transaction's snapshot: the INSERT has already failed to
      // serialise in that case, so this is only a guard.
      if (current === undefined) throw new Error(`the exporter state of ${collector} is not visible yet`);
    }
    const { state, result } = await work(client, current);
    await client.query(`UPDATE controlroom.exporter_state SET state = $2, updated_at = now() WHERE collector = $1`, [
      collector,
      JSON.stringify(state),
    ]);
    return result;
  });
}
