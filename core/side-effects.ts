import { createHash } from 'node:crypto';
import type { Pool, PoolClient } from './db.ts';

/**
 * Runs an external side effect (a Slack post, a GitHub review) at most once per key, and records it as
 * done in Postgres before the caller goes on to its next step. A queue retry of a multi-step action
 * therefore repeats only the steps that did not happen: a step found recorded is skipped and its stored
 * result returned. The one window left is a crash between the call succeeding and the record being
 * written (a few milliseconds); then that one step is repeated, which APIs without an idempotency key
 * (chat.postMessage) cannot prevent. The pager's thread replies, escalations and button notes use this
 * and keep that window. Slack page roots and storm digests do not: they commit an intent before the
 * post and tag it with message metadata, so a retry finds and adopts the post in the channel's history
 * (alerting/slack/pager.ts).
 *
 * Keys name the effect and the identity of what it is about, including its generation where one can
 * start over (a Slack page that resolved and fired again gets new escalation keys).
 * Callers must not run two attempts of one key at the same time (the job queue serialises them).
 */
export async function once<T extends Record<string, unknown>>(
  pool: Pool | PoolClient,
  key: string,
  effect: () => Promise<T>
): Promise<T> {
  const done = await pool.query<{ result: T }>(`SELECT result FROM controlroom.side_effects WHERE key = $1`, [key]);
  if (done.rows[0]) return done.rows[0].result;
  const result = await effect();
  await pool.query(`INSERT INTO controlroom.side_effects (key, result) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, [
    key,
    JSON.stringify(result),
  ]);
  return result;
}

/** A short, stable fingerprint of what a message shows, to tell whether an update would change anything. */
export const renderedDigest = (message: unknown): string =>
  createHash('sha256').update(JSON.stringify(message)).digest('hex');

/**
 * Deletes the records of side effects done more than `olderThanDays` ago, in batches (each its own short
 * statement, so the table is never locked long and a crash mid-way leaves only whole batches deleted).
 * Safe once no retry can still ask for a key: a job's retries end within days (graphile-worker's backoff
 * tops out at about 6 h between attempts), and a key's generation changes when what it is about starts
 * over, so the retention (SIDE_EFFECTS_RETENTION_DAYS, at least 7) is far past any lookup. Returns the rows deleted.
 */
export async function pruneSideEffects(pool: Pool, olderThanDays: number, batchSize = 5_000): Promise<number> {
  let deleted = 0;
  for (;;) {
    const { rowCount } = await pool.query(
      `DELETE FROM controlroom.side_effects
        WHERE key IN (SELECT key FROM controlroom.side_effects
                       WHERE done_at < now() - make_interval(days => $1::int)
                       ORDER BY done_at LIMIT $2)`,
      [olderThanDays, batchSize]
    );
    deleted += rowCount ?? 0;
    if ((rowCount ?? 0) < batchSize) return deleted;
  }
}
