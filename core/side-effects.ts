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
