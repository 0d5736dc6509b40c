import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { withTransaction } from '../../core/db.ts';
import { insertCompany } from '../../testing/companies.ts';
import { testExporter } from '../../testing/exporter.ts';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';
import {
  createRatingService,
  loadRegistry,
  promoteCandidate,
  registerModel,
  SEED_V1,
  tryRateWithRegistry,
} from '../rating/index.ts';
import { LaneCopy } from './ingest.ts';
import type { LaneRow } from './lanes.ts';
import { rateJob } from './process.ts';
import { lanesAfter } from './routes.ts';

/**
 * Lanes stored in chunks (migration 1700000000033): what goes in comes out of the bulk_lanes view lane by
 * lane; the worker's chunk results equal the per-lane engine's for every lane; a chunk is rated once
 * whoever races for it; the drift metrics add up to the lanes; and the view refuses lane-by-lane writes.
 */
let db: TestDatabase;
let company: string;
const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
const rating = createRatingService();

before(async () => {
  db = await createTestDatabase();
  company = await insertCompany(db.pool, 'Chunk Freight', 'enterprise');
  await registerModel(
    db.pool,
    { ...structuredClone(SEED_V1), version: 'v2-chunks', ratePerMile: { ...SEED_V1.ratePerMile, van: 3.5 } },
    'grafana:alice'
  );
  await promoteCandidate(db.pool, 'v2-chunks', 0.5, 'grafana:alice');
});
after(async () => db.drop());
beforeEach(async () => {
  await db.pool.query(`DELETE FROM controlroom.bulk_jobs; DELETE FROM controlroom.exporter_state`);
});

/** A job whose lanes are COPYed in chunks of `chunkLanes`, as an upload stores them. */
async function chunkedJob(lanes: Array<Omit<LaneRow, 'line'>>, chunkLanes: number): Promise<string> {
  return withTransaction(db.pool, 'READ COMMITTED', async (client) => {
    const { rows } = await client.query<{ id: string }>(
      `INSERT INTO controlroom.bulk_jobs (company_id, submitted_by, request_sha256, source, lanes_total, agent_task_id)
       VALUES ($1, 'test', 'x', 'csv', $2, 0) RETURNING id`,
      [company, lanes.length]
    );
    const copy = await LaneCopy.open(client, rows[0]!.id, chunkLanes);
    lanes.forEach((lane, i) => copy.add({ ...lane, line: i + 2 }));
    assert.equal(await copy.finish(), lanes.length);
    return rows[0]!.id;
  });
}

const CITIES = ['Chicago, IL', 'Atlanta, GA', 'Dallas, TX', 'Denver, CO', 'Seattle, WA', 'Miami, FL', '90001'];
const EQUIPMENT = ['van', 'reefer', 'flatbed'] as const;
/** Every pair of cities in every equipment, and one lane the engine cannot rate. */
const LANES: Array<Omit<LaneRow, 'line'>> = [
  ...CITIES.flatMap((o, i) =>
    CITIES.filter((d) => d !== o).map((d, j) => ({
      origin: o,
      destination: d,
      equipment: EQUIPMENT[(i + j) % 3]!,
      pickupDate: tomorrow,
    }))
  ),
  { origin: 'Nowhere, ZZ', destination: 'Atlanta, GA', equipment: 'van', pickupDate: tomorrow },
];

const laneRows = async (jobId: string) =>
  (
    await db.pool.query(
      `SELECT seq, line, origin, destination, equipment, to_char(pickup_date, 'YYYY-MM-DD') AS pickup_date, status,
              miles, linehaul::text, fuel::text, total::text, per_mile::text, model_version, flags, error, arm, rated_id
         FROM controlroom.bulk_lanes WHERE job_id = $1 ORDER BY seq`,
      [jobId]
    )
  ).rows;

describe('chunked lanes', () => {
  test('any text survives the chunk encoding: quotes, backslashes, tabs, line breaks, commas, braces, NULL', async () => {
    const odd = [
      'a "quoted" city',
      'back\\slash \\\\ two',
      'tab\there',
      'line\nbreak\r\n',
      '{braces},commas',
      'NULL',
      'é 東京 ✓',
      '""',
      '\\',
    ];
    const lanes = odd.map((origin, i) => ({
      origin,
      destination: odd[odd.length - 1 - i]!,
      equipment: EQUIPMENT[i % 3]!,
      pickupDate: tomorrow,
    }));
    const id = await chunkedJob(lanes, 4);
    const rows = await laneRows(id);
    assert.deepEqual(
      rows.map((r) => [r.seq, r.line, r.origin, r.destination, r.equipment, r.pickup_date, r.status]),
      lanes.map((l, i) => [i + 1, i + 2, l.origin, l.destination, l.equipment, l.pickupDate, 'pending'])
    );
    const chunks = await db.pool.query(
      `SELECT chunk, first_seq, lanes FROM controlroom.bulk_lane_chunks WHERE job_id = $1 ORDER BY chunk`,
      [id]
    );
    assert.deepEqual(
      chunks.rows.map((c) => [c.chunk, c.first_seq, c.lanes]),
      [
        [1, 1, 4],
        [2, 5, 4],
        [3, 9, 1],
      ]
    );
  });

  test('the worker writes each chunk once, equal lane by lane to the per-lane engine; the drift metrics add up', async () => {
    const id = await chunkedJob(LANES, 5);
    const snapshot = await loadRegistry(db.pool);
    const stats = await rateJob(db.pool, id, rating, 10); // two chunks a batch
    assert.equal(stats.lanes, LANES.length);

    const rows = await laneRows(id);
    assert.equal(rows.length, LANES.length);
    for (const [i, lane] of LANES.entries()) {
      const row = rows[i]!;
      const expected = tryRateWithRegistry(lane, snapshot);
      if (typeof expected === 'string') {
        assert.deepEqual(
          [row.status, row.miles, row.total, row.model_version, row.arm, row.flags, row.error, row.rated_id],
          ['failed', null, null, null, null, [], expected, null]
        );
        continue;
      }
      assert.deepEqual(
        [row.status, row.miles, Number(row.linehaul), Number(row.fuel), Number(row.total), Number(row.per_mile)],
        ['rated', expected.miles, expected.linehaul, expected.fuel, expected.total, expected.perMile],
        `lane ${i + 1}`
      );
      assert.deepEqual(
        [row.model_version, row.arm, row.flags, row.error],
        [expected.modelVersion, expected.arm, expected.flags, null]
      );
      assert.ok(row.rated_id !== null);
    }
    const arms = new Set(rows.map((r) => r.arm));
    assert.ok(arms.has('active') && arms.has('candidate'), 'both arms priced lanes');

    const job = await db.pool.query(
      `SELECT lanes_rated, lanes_failed, lanes_total FROM controlroom.bulk_jobs WHERE id = $1`,
      [id]
    );
    assert.deepEqual(job.rows[0], { lanes_rated: LANES.length - 1, lanes_failed: 1, lanes_total: LANES.length });

    // Run again: nothing is pending, nothing is written, the counters stay.
    assert.equal((await rateJob(db.pool, id, rating, 10)).lanes, 0);
    assert.deepEqual(
      (await db.pool.query(`SELECT lanes_rated, lanes_failed FROM controlroom.bulk_jobs WHERE id = $1`, [id])).rows[0],
      { lanes_rated: LANES.length - 1, lanes_failed: 1 }
    );

    const sums = await db.pool.query<{
      model_version: string;
      arm: string;
      n: number;
      anomalies: number;
      review: number;
      cents: string;
      miles: number;
    }>(
      `SELECT model_version, arm, count(*)::int AS n, count(*) FILTER (WHERE 'anomaly' = ANY(flags))::int AS anomalies,
              count(*) FILTER (WHERE 'needs_review' = ANY(flags))::int AS review,
              sum(total * 100)::bigint AS cents, sum(miles)::int AS miles
         FROM controlroom.bulk_lanes WHERE job_id = $1 AND status = 'rated' GROUP BY 1, 2`,
      [id]
    );
    const exporter = testExporter(db.pool);
    await exporter.runner.refreshAll();
    for (const r of sums.rows) {
      const labels = { model_version: r.model_version, role: r.arm };
      assert.equal(await exporter.value('controlroom_pricing_lanes_rated_total', labels), r.n);
      assert.equal(await exporter.value('controlroom_pricing_anomaly_lanes_total', labels), r.anomalies);
      assert.equal(await exporter.value('controlroom_pricing_needs_review_lanes_total', labels), r.review);
      assert.equal(await exporter.value('controlroom_pricing_quoted_dollars_total', labels), Number(r.cents) / 100);
      assert.equal(await exporter.value('controlroom_pricing_quoted_miles_total', labels), r.miles);
    }
    assert.ok(
      sums.rows.some((r) => r.anomalies > 0),
      'the dearer candidate shows anomalies'
    );

    // Deleting the job removes its chunks, results and tallies; the metrics keep what was rated.
    await db.pool.query(`DELETE FROM controlroom.bulk_jobs WHERE id = $1`, [id]);
    const left = await db.pool.query(
      `SELECT (SELECT count(*) FROM controlroom.bulk_lane_chunks)::int AS chunks,
              (SELECT count(*) FROM controlroom.bulk_lane_results)::int AS results,
              (SELECT count(*) FROM controlroom.bulk_rating_tallies)::int AS tallies`
    );
    assert.deepEqual(left.rows[0], { chunks: 0, results: 0, tallies: 0 });
    await exporter.runner.refreshAll();
    const first = sums.rows[0]!;
    assert.equal(
      await exporter.value('controlroom_pricing_lanes_rated_total', {
        model_version: first.model_version,
        role: first.arm,
      }),
      first.n
    );
  });

  test('two workers racing on one job rate every chunk once: the counters equal the lanes', async () => {
    const lanes = Array.from({ length: 600 }, (_, i) => LANES[i % (LANES.length - 1)]!);
    const id = await chunkedJob(lanes, 7);
    const [a, b] = await Promise.all([rateJob(db.pool, id, rating, 14), rateJob(db.pool, id, rating, 21)]);
    assert.ok(a.lanes + b.lanes >= lanes.length);
    const check = await db.pool.query(
      `SELECT j.lanes_rated, j.lanes_failed,
              (SELECT count(*) FROM controlroom.bulk_lane_results r WHERE r.job_id = j.id)::int AS results,
              (SELECT count(*) FROM controlroom.bulk_lane_chunks c WHERE c.job_id = j.id)::int AS chunks,
              (SELECT sum(lanes) FROM controlroom.bulk_rating_tallies t WHERE t.job_id = j.id)::int AS tallied,
              (SELECT count(*) FROM controlroom.bulk_lanes l WHERE l.job_id = j.id AND l.status = 'rated')::int AS rated
         FROM controlroom.bulk_jobs j WHERE j.id = $1`,
      [id]
    );
    assert.deepEqual(check.rows[0], {
      lanes_rated: lanes.length,
      lanes_failed: 0,
      results: Math.ceil(lanes.length / 7),
      chunks: Math.ceil(lanes.length / 7),
      tallied: lanes.length,
      rated: lanes.length,
    });
  });

  test('results pages read across chunk boundaries exactly as the view orders the lanes', async () => {
    const lanes = Array.from({ length: 23 }, (_, i) => LANES[i]!);
    const id = await chunkedJob(lanes, 5);
    await rateJob(db.pool, id, rating, 5);
    const all = (
      await db.pool.query(`SELECT seq, line, total::text FROM controlroom.bulk_lanes WHERE job_id = $1 ORDER BY seq`, [
        id,
      ])
    ).rows;
    for (const [after, limit] of [
      [0, 1],
      [0, 23],
      [0, 100],
      [4, 1],
      [4, 2],
      [5, 5],
      [7, 9],
      [22, 5],
      [23, 5],
      [Number.MAX_SAFE_INTEGER, 5],
    ] as const) {
      const page = await lanesAfter<{ seq: number; line: number; total: string }>(
        db.pool,
        id,
        after,
        limit,
        'seq, line, total::text'
      );
      assert.deepEqual(page, all.slice(Math.min(after, all.length), after + limit), `after ${after}, limit ${limit}`);
    }
  });

  test('a chunked lane cannot be changed or deleted lane by lane through the view', async () => {
    const id = await chunkedJob(LANES.slice(0, 3), 2);
    await assert.rejects(
      db.pool.query(`UPDATE controlroom.bulk_lanes SET status = 'rated' WHERE job_id = $1 AND seq = 2`, [id]),
      (error: { code?: string; message: string }) =>
        error.code === '55000' && /lane 2 of job .* is stored in a chunk/.test(error.message)
    );
    await assert.rejects(
      db.pool.query(`DELETE FROM controlroom.bulk_lanes WHERE job_id = $1`, [id]),
      (error: { code?: string }) => error.code === '55000'
    );
    assert.equal((await laneRows(id)).length, 3);
  });
});
