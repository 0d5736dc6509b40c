import assert from 'node:assert/strict';
import type { JobHelpers } from 'graphile-worker';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createLogger } from '../../core/logger.ts';
import { testExporter } from '../../testing/exporter.ts';
import { insertCompany } from '../../testing/companies.ts';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';
import { seriesOf } from '../../testing/prom-text.ts';
import { bulkRateTask } from '../../control/bulk/process.ts';
import { createRatingService, promoteCandidate, registerModel, SEED_V1 } from '../../control/rating/index.ts';

let db: TestDatabase;
let company: string;
before(async () => {
  db = await createTestDatabase();
  company = await insertCompany(db.pool, 'Drift Freight', 'enterprise');
});
after(async () => db.drop());
beforeEach(async () => {
  await db.pool.query(
    `DELETE FROM controlroom.bulk_jobs; DELETE FROM controlroom.exporter_state WHERE collector LIKE 'pricing%';
     ALTER SEQUENCE controlroom.bulk_lanes_rated_id_seq RESTART`
  );
  await db.pool.query(`UPDATE controlroom.pricing_models SET status = 'draft' WHERE status = 'candidate'`);
});

interface KnownLane {
  model: string;
  arm: 'active' | 'candidate';
  total: number;
  miles: number;
  flags?: string[];
}

/** A job whose lanes are inserted pending and then rated by an UPDATE, as the bulk worker rates them. */
async function job(lanes: number): Promise<string> {
  const task = await db.pool.query<{ id: string }>(
    `INSERT INTO agent_tasks (company_id, fn_name) VALUES ($1, 'bulk_rating') RETURNING id`,
    [company]
  );
  const { rows } = await db.pool.query<{ id: string }>(
    `INSERT INTO controlroom.bulk_jobs (company_id, submitted_by, request_sha256, source, lanes_total, agent_task_id)
     VALUES ($1, 'test', 'x', 'json', $2, $3) RETURNING id`,
    [company, lanes, task.rows[0]!.id]
  );
  const id = rows[0]!.id;
  await db.pool.query(
    `INSERT INTO controlroom.bulk_lanes (job_id, seq, line, origin, destination, equipment, pickup_date)
     SELECT $1, s, s + 1, 'Chicago, IL', 'Atlanta, GA', 'van', current_date FROM generate_series(1, $2) AS s`,
    [id, lanes]
  );
  return id;
}

async function rate(
  client: { query: TestDatabase['pool']['query'] },
  jobId: string,
  from: number,
  lanes: KnownLane[]
): Promise<void> {
  for (const [i, lane] of lanes.entries()) {
    await client.query(
      `UPDATE controlroom.bulk_lanes SET status = 'rated', model_version = $3, arm = $4, total = $5, miles = $6, flags = $7
        WHERE job_id = $1 AND seq = $2`,
      [jobId, from + i, lane.model, lane.arm, lane.total, lane.miles, lane.flags ?? []]
    );
  }
}

const drift = async (exporter: ReturnType<typeof testExporter>) => {
  const m = await exporter.scrape();
  return Object.fromEntries(
    [
      'controlroom_pricing_lanes_rated_total',
      'controlroom_pricing_anomaly_lanes_total',
      'controlroom_pricing_needs_review_lanes_total',
      'controlroom_pricing_quoted_dollars_total',
      'controlroom_pricing_quoted_miles_total',
    ].flatMap((name) => seriesOf(m, name))
  );
};

const KNOWN: KnownLane[] = [
  { model: 'v1', arm: 'active', total: 1000.1, miles: 400 },
  { model: 'v1', arm: 'active', total: 500.2, miles: 200, flags: ['needs_review', 'regional_cap'] },
  { model: 'v1', arm: 'active', total: 350, miles: 100, flags: ['minimum_charge'] },
  { model: 'v2', arm: 'candidate', total: 1100, miles: 450, flags: ['anomaly'] },
  { model: 'v2', arm: 'candidate', total: 600.05, miles: 210, flags: ['needs_review', 'anomaly'] },
  { model: 'v2', arm: 'candidate', total: 0.1, miles: 0 },
];
const V1 = 'model_version="v1",role="active"';
const V2 = 'model_version="v2",role="candidate"';
const EXPECTED = {
  [`controlroom_pricing_lanes_rated_total{${V1}}`]: 3,
  [`controlroom_pricing_lanes_rated_total{${V2}}`]: 3,
  [`controlroom_pricing_anomaly_lanes_total{${V1}}`]: 0,
  [`controlroom_pricing_anomaly_lanes_total{${V2}}`]: 2,
  [`controlroom_pricing_needs_review_lanes_total{${V1}}`]: 1,
  [`controlroom_pricing_needs_review_lanes_total{${V2}}`]: 1,
  [`controlroom_pricing_quoted_dollars_total{${V1}}`]: 1850.3,
  [`controlroom_pricing_quoted_dollars_total{${V2}}`]: 1700.15,
  [`controlroom_pricing_quoted_miles_total{${V1}}`]: 700,
  [`controlroom_pricing_quoted_miles_total{${V2}}`]: 660,
};

describe('pricing drift metrics', () => {
  test('equal the rated lanes, by model version and role; pending and failed lanes are not counted', async () => {
    const id = await job(8);
    await rate(db.pool, id, 1, KNOWN);
    await db.pool.query(
      `UPDATE controlroom.bulk_lanes SET status = 'failed', error = 'unknown origin' WHERE job_id = $1 AND seq = 7`,
      [id]
    );
    const exporter = testExporter(db.pool);
    await exporter.runner.refreshAll();
    assert.deepEqual(await drift(exporter), EXPECTED);
  });

  test('survive a restart, never double a lane touched again, and never drop when jobs are deleted', async () => {
    const id = await job(6);
    await rate(db.pool, id, 1, KNOWN.slice(0, 4));
    const first = testExporter(db.pool);
    await first.runner.refreshAll();
    // A rated lane saved again (its flags edited) keeps its rated_id, so it is not a second rating.
    await db.pool.query(`UPDATE controlroom.bulk_lanes SET flags = '{anomaly}' WHERE job_id = $1 AND seq = 1`, [id]);
    await rate(db.pool, id, 5, KNOWN.slice(4));
    const second = testExporter(db.pool); // a new process: state only in Postgres
    await second.runner.refreshAll();
    assert.deepEqual(await drift(second), EXPECTED);
    await first.runner.refreshAll(); // the other instance publishes the same totals
    assert.deepEqual(await drift(first), EXPECTED);

    await db.pool.query(`DELETE FROM controlroom.bulk_jobs WHERE id = $1`, [id]);
    await second.runner.refreshAll();
    assert.deepEqual(await drift(second), EXPECTED);
  });

  test('count a rating batch that commits after a later batch was already folded', async () => {
    const id = await job(6);
    const exporter = testExporter(db.pool);
    const slow = await db.pool.connect();
    try {
      await slow.query('BEGIN');
      await rate(slow, id, 1, KNOWN.slice(0, 3)); // takes rated ids first, commits last
      await rate(db.pool, id, 4, KNOWN.slice(3));
      await exporter.runner.refreshAll();
      const before = await drift(exporter);
      assert.equal(before[`controlroom_pricing_lanes_rated_total{${V2}}`], 3);
      assert.equal(before[`controlroom_pricing_lanes_rated_total{${V1}}`], 0); // the active model's series, at 0 until its lanes commit
      assert.equal(await exporter.value('controlroom_exporter_open_id_gaps', { collector: 'pricing_drift' }), 1);
      await slow.query('COMMIT');
    } finally {
      slow.release();
    }
    await exporter.runner.refreshAll();
    assert.deepEqual(await drift(exporter), EXPECTED);
    assert.equal(await exporter.value('controlroom_exporter_open_id_gaps', { collector: 'pricing_drift' }), 0);
  });

  test('the candidate share and the alert settings are published', async () => {
    const exporter = testExporter(db.pool, { PRICING_ANOMALY_ALERT_RATIO: 0.07, PRICING_ANOMALY_ALERT_MIN_LANES: 250 });
    await exporter.runner.refreshAll();
    let m = await exporter.scrape();
    assert.deepEqual(Object.fromEntries(seriesOf(m, 'controlroom_pricing_candidate_share_ratio')), {
      'controlroom_pricing_candidate_share_ratio{role="candidate"}': 0,
    });
    assert.equal(m.get('controlroom_pricing_anomaly_alert_ratio'), 0.07);
    assert.equal(m.get('controlroom_pricing_anomaly_alert_min_lanes'), 250);

    await registerModel(db.pool, { ...structuredClone(SEED_V1), version: 'share-test' }, 'grafana:alice').catch(
      () => undefined
    );
    await promoteCandidate(db.pool, 'share-test', 0.25, 'grafana:alice');
    await exporter.runner.refreshAll();
    m = await exporter.scrape();
    assert.deepEqual(Object.fromEntries(seriesOf(m, 'controlroom_pricing_candidate_share_ratio')), {
      'controlroom_pricing_candidate_share_ratio{model_version="share-test",role="candidate"}': 0.25,
    });
    // The new candidate's counters exist at 0 before it rates a lane, so rate() sees its first batch.
    assert.equal(m.get('controlroom_pricing_lanes_rated_total{model_version="share-test",role="candidate"}'), 0);
    assert.equal(m.get('controlroom_pricing_anomaly_lanes_total{model_version="share-test",role="candidate"}'), 0);
    assert.equal(m.get('controlroom_pricing_lanes_rated_total{model_version="v1",role="active"}'), 0);
  });

  test('the bulk worker records the arm, and the metrics match its lanes exactly', async () => {
    // A candidate 30% dearer on vans takes half of the lanes: every van lane it prices is an anomaly.
    await registerModel(
      db.pool,
      {
        ...structuredClone(SEED_V1),
        version: 'v2-dear',
        ratePerMile: { ...SEED_V1.ratePerMile, van: SEED_V1.ratePerMile.van * 1.3 },
      },
      'grafana:alice'
    ).catch(() => undefined);
    await promoteCandidate(db.pool, 'v2-dear', 0.5, 'grafana:alice');
    const cities = [
      'Chicago, IL',
      'Atlanta, GA',
      'Dallas, TX',
      'Denver, CO',
      'Seattle, WA',
      'Boston, MA',
      'Miami, FL',
      'Phoenix, AZ',
    ];
    const lanes = cities.flatMap((o) => cities.filter((d) => d !== o).map((d) => [o, d] as const));
    const id = await job(lanes.length);
    await db.pool.query(
      `UPDATE controlroom.bulk_lanes l SET origin = v.o, destination = v.d, pickup_date = '2026-07-06'
         FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS v(o, d, seq) WHERE l.job_id = $1 AND l.seq = v.seq`,
      [id, lanes.map((l) => l[0]), lanes.map((l) => l[1])]
    );
    const task = bulkRateTask(db.pool, createRatingService(), 10, createLogger('silent'));
    await task({ jobId: id }, { job: { attempts: 1, max_attempts: 3 } } as unknown as JobHelpers);

    const { rows } = await db.pool.query<{
      model_version: string;
      arm: string;
      n: number;
      anomalies: number;
      cents: string;
      miles: number;
    }>(
      `SELECT model_version, arm, count(*)::int AS n, count(*) FILTER (WHERE 'anomaly' = ANY(flags))::int AS anomalies,
              sum(total * 100)::bigint AS cents, sum(miles)::int AS miles
         FROM controlroom.bulk_lanes WHERE job_id = $1 AND status = 'rated' GROUP BY 1, 2 ORDER BY 2`,
      [id]
    );
    assert.deepEqual(
      rows.map((r) => [r.model_version, r.arm]),
      [
        ['v1', 'active'],
        ['v2-dear', 'candidate'],
      ]
    );
    const candidate = rows[1]!;
    assert.ok(
      candidate.n > 10 && candidate.n < lanes.length - 10,
      `a real split, got ${candidate.n} of ${lanes.length}`
    );
    assert.equal(candidate.anomalies, candidate.n);

    const exporter = testExporter(db.pool);
    await exporter.runner.refreshAll();
    for (const r of rows) {
      const labels = { model_version: r.model_version, role: r.arm };
      assert.equal(await exporter.value('controlroom_pricing_lanes_rated_total', labels), r.n);
      assert.equal(await exporter.value('controlroom_pricing_anomaly_lanes_total', labels), r.anomalies);
      assert.equal(await exporter.value('controlroom_pricing_quoted_dollars_total', labels), Number(r.cents) / 100);
      assert.equal(await exporter.value('controlroom_pricing_quoted_miles_total', labels), r.miles);
    }
  });
});
