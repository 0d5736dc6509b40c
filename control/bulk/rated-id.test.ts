import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { insertCompany } from '../../testing/companies.ts';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';

/**
 * Migration 1700000000028 runs the rated_id trigger only where it changes something. Every path must
 * still end where the original trigger put it: a rating gets exactly one number from the sequence, a
 * rated lane keeps its number, an unrated lane has none, and no writer can choose its own number.
 */
let db: TestDatabase;
let jobId: string;
before(async () => {
  db = await createTestDatabase();
  const company = await insertCompany(db.pool, 'Rated Id Freight', 'enterprise');
  const { rows } = await db.pool.query<{ id: string }>(
    `INSERT INTO controlroom.bulk_jobs (company_id, submitted_by, request_sha256, source, lanes_total, agent_task_id)
     VALUES ($1, 'test', 'x', 'csv', 6, 0) RETURNING id`,
    [company]
  );
  jobId = rows[0]!.id;
});
after(async () => db.drop());

const lanes = async () =>
  (
    await db.pool.query<{ seq: number; status: string; rated_id: string | null }>(
      `SELECT seq, status, rated_id FROM controlroom.bulk_lanes WHERE job_id = $1 ORDER BY seq`,
      [jobId]
    )
  ).rows.map((r) => [r.seq, r.status, r.rated_id === null ? null : Number(r.rated_id)]);
const updateOn = (client: Pick<TestDatabase['pool'], 'query'>, set: string, seq: number) =>
  client.query(`UPDATE controlroom.bulk_lanes SET ${set} WHERE job_id = $1 AND seq = $2`, [jobId, seq]);

test('the rated_id trigger gives the same numbers as before on every path', async () => {
  await db.pool.query(`ALTER SEQUENCE controlroom.bulk_lanes_rated_id_seq RESTART WITH 100`);
  // Inserted: a pending lane has no number, whatever is written; a rated one gets the sequence's.
  await db.pool.query(
    `INSERT INTO controlroom.bulk_lanes (job_id, seq, line, origin, destination, equipment, pickup_date, status, rated_id)
     VALUES ($1, 1, 2, 'Chicago, IL', 'Atlanta, GA', 'van', current_date, 'pending', NULL),
            ($1, 2, 3, 'Chicago, IL', 'Atlanta, GA', 'van', current_date, 'rated', 999999),
            ($1, 3, 4, 'Chicago, IL', 'Atlanta, GA', 'van', current_date, 'pending', 5),
            ($1, 4, 5, 'Chicago, IL', 'Atlanta, GA', 'van', current_date, 'pending', NULL),
            ($1, 5, 6, 'Chicago, IL', 'Atlanta, GA', 'van', current_date, 'pending', NULL),
            ($1, 6, 7, 'Chicago, IL', 'Atlanta, GA', 'van', current_date, 'pending', NULL)`,
    [jobId]
  );
  assert.deepEqual(await lanes(), [
    [1, 'pending', null],
    [2, 'rated', 100],
    [3, 'pending', null],
    [4, 'pending', null],
    [5, 'pending', null],
    [6, 'pending', null],
  ]);

  // One session: currval() is per session, as the worker's UPDATE and its trigger check are.
  const client = await db.pool.connect();
  try {
    const update = (set: string, seq: number) => updateOn(client, set, seq);
    await update(`status = 'rated'`, 1); // the trigger numbers it: 101
    await update(`status = 'rated', rated_id = nextval('controlroom.bulk_lanes_rated_id_seq')`, 4); // as the worker does: 102
    await update(`status = 'rated', rated_id = 424242`, 5); // a number of its own choosing is replaced: 103
    await update(`rated_id = NULL, flags = '{anomaly}'`, 2); // a rated lane keeps its number
    await update(`rated_id = 7`, 1);
    await update(`status = 'failed', rated_id = 8`, 3); // an unrated lane has none
  } finally {
    client.release();
  }
  assert.deepEqual(await lanes(), [
    [1, 'rated', 101],
    [2, 'rated', 100],
    [3, 'failed', null],
    [4, 'rated', 102],
    [5, 'rated', 103],
    [6, 'pending', null],
  ]);

  // A session that never took a number cannot set one on a lane it rates: refused, nothing changed.
  const fresh = new pg.Client({ connectionString: db.url });
  await fresh.connect();
  try {
    await assert.rejects(updateOn(fresh, `status = 'rated', rated_id = 500`, 6), /currval of sequence/);
  } finally {
    await fresh.end();
  }
  assert.deepEqual((await lanes())[5], [6, 'pending', null]);
});
