import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../testing/postgres.ts';
import { seriesOf } from '../testing/prom-text.ts';
import { testExporter } from '../testing/exporter.ts';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => db.drop());
beforeEach(async () => {
  await db.pool.query(`TRUNCATE api_requests, quote_requests RESTART IDENTITY; DELETE FROM controlroom.exporter_state`);
});

async function insertRequests(region: string, statusCodes: number[]): Promise<void> {
  await db.pool.query(
    `INSERT INTO api_requests (region, status_code, route) SELECT $1, code, '/v1/quotes' FROM unnest($2::int[]) AS code`,
    [region, statusCodes]
  );
}

describe('tms_api_requests_total', () => {
  test('equals the rows seen, by region and status class', async () => {
    await insertRequests('us-east-1', [200, 201, 204, 301, 404, 429, 500, 503, 503]);
    await insertRequests('us-west-2', [200, 502]);
    const exporter = testExporter(db.pool);
    await exporter.runner.refreshAll();
    const m = await exporter.scrape();
    assert.deepEqual(Object.fromEntries(seriesOf(m, 'tms_api_requests_total')), {
      'tms_api_requests_total{code_class="2xx",region="us-east-1"}': 3,
      'tms_api_requests_total{code_class="3xx",region="us-east-1"}': 1,
      'tms_api_requests_total{code_class="4xx",region="us-east-1"}': 2,
      'tms_api_requests_total{code_class="5xx",region="us-east-1"}': 3,
      'tms_api_requests_total{code_class="2xx",region="us-west-2"}': 1,
      'tms_api_requests_total{code_class="5xx",region="us-west-2"}': 1,
    });

    await insertRequests('us-east-1', [200, 500]);
    await exporter.runner.refreshAll();
    assert.equal(await exporter.value('tms_api_requests_total', { region: 'us-east-1', code_class: '2xx' }), 4);
    assert.equal(await exporter.value('tms_api_requests_total', { region: 'us-east-1', code_class: '5xx' }), 4);
  });

  test('survives an exporter restart without dropping or doubling', async () => {
    await insertRequests('us-east-1', [200, 200, 500]);
    const first = testExporter(db.pool);
    await first.runner.refreshAll();
    assert.equal(await first.value('tms_api_requests_total', { region: 'us-east-1', code_class: '2xx' }), 2);

    const second = testExporter(db.pool); // a new process: fresh registry, state only in Postgres
    await second.runner.refreshAll();
    assert.equal(await second.value('tms_api_requests_total', { region: 'us-east-1', code_class: '2xx' }), 2);
    assert.equal(await second.value('tms_api_requests_total', { region: 'us-east-1', code_class: '5xx' }), 1);

    await insertRequests('us-east-1', [200]);
    await second.runner.refreshAll();
    assert.equal(await second.value('tms_api_requests_total', { region: 'us-east-1', code_class: '2xx' }), 3);
  });

  test('never goes down when the TMS purges old rows', async () => {
    await insertRequests('us-east-1', [200, 200, 200, 500]);
    const exporter = testExporter(db.pool);
    await exporter.runner.refreshAll();
    await db.pool.query(`DELETE FROM api_requests`);
    await exporter.runner.refreshAll();
    assert.equal(await exporter.value('tms_api_requests_total', { region: 'us-east-1', code_class: '2xx' }), 3);
    await insertRequests('us-east-1', [200]);
    await exporter.runner.refreshAll();
    assert.equal(await exporter.value('tms_api_requests_total', { region: 'us-east-1', code_class: '2xx' }), 4);
  });

  test('counts a row whose transaction commits after a later id was already read', async () => {
    const exporter = testExporter(db.pool);
    const slow = await db.pool.connect();
    try {
      await slow.query('BEGIN');
      await slow.query(`INSERT INTO api_requests (region, status_code, route) VALUES ('us-east-1', 500, '/slow')`);
      await insertRequests('us-east-1', [200]); // higher id, committed first
      await exporter.runner.refreshAll();
      assert.equal(await exporter.value('tms_api_requests_total', { region: 'us-east-1', code_class: '2xx' }), 1);
      assert.equal(
        await exporter.value('tms_api_requests_total', { region: 'us-east-1', code_class: '5xx' }),
        undefined
      );
      assert.equal(await exporter.value('controlroom_exporter_open_id_gaps', { collector: 'api_requests' }), 1);
      await slow.query('COMMIT');
    } finally {
      slow.release();
    }
    await exporter.runner.refreshAll();
    assert.equal(await exporter.value('tms_api_requests_total', { region: 'us-east-1', code_class: '5xx' }), 1);
    assert.equal(await exporter.value('tms_api_requests_total', { region: 'us-east-1', code_class: '2xx' }), 1);
    assert.equal(await exporter.value('controlroom_exporter_open_id_gaps', { collector: 'api_requests' }), 0);
  });

  test('gives up a rolled-back id after the grace period', async () => {
    const exporter = testExporter(db.pool, { EXPORTER_GAP_GRACE_SECONDS: 1 });
    await db.pool.query(
      "BEGIN; INSERT INTO api_requests (region, status_code, route) VALUES ('x', 200, '/'); ROLLBACK"
    );
    await insertRequests('us-east-1', [200]);
    await exporter.runner.refreshAll();
    assert.equal(await exporter.value('controlroom_exporter_open_id_gaps', { collector: 'api_requests' }), 1);
    await new Promise((r) => setTimeout(r, 1_100));
    await exporter.runner.refreshAll();
    assert.equal(await exporter.value('controlroom_exporter_open_id_gaps', { collector: 'api_requests' }), 0);
    assert.equal(
      await exporter.value('controlroom_exporter_abandoned_id_gaps_total', { collector: 'api_requests' }),
      1
    );
  });

  test('two exporters refreshing at once count every row exactly once', async () => {
    const a = testExporter(db.pool);
    const b = testExporter(db.pool);
    for (let round = 0; round < 5; round++) {
      await insertRequests(
        'us-east-1',
        Array.from({ length: 100 }, () => 200)
      );
      await Promise.all([a.runner.refreshAll(), b.runner.refreshAll()]);
    }
    await a.runner.refreshAll();
    await b.runner.refreshAll();
    assert.equal(await a.value('tms_api_requests_total', { region: 'us-east-1', code_class: '2xx' }), 500);
    assert.equal(await b.value('tms_api_requests_total', { region: 'us-east-1', code_class: '2xx' }), 500);
  });

  test('catches up over several batches', async () => {
    await insertRequests(
      'us-east-1',
      Array.from({ length: 250 }, () => 200)
    );
    const exporter = testExporter(db.pool, { EXPORTER_BATCH_IDS: 40 });
    await exporter.runner.refreshAll(); // 20 steps of 40 ids covers all 250
    assert.equal(await exporter.value('tms_api_requests_total', { region: 'us-east-1', code_class: '2xx' }), 250);
  });
});

describe('tms_quote_request_duration_seconds', () => {
  test('buckets count response_time <= le, with exact _sum and _count per cached', async () => {
    const uncached = [10, 50, 50.5, 100, 199, 200, 300, 450, 500, 501, 600, 750, 999, 1000, 2000, 4999, 5000, 7000];
    const cached = [20, 120, 200, 201];
    await db.pool.query(
      `INSERT INTO quote_requests (response_time_ms, cached)
       SELECT ms, false FROM unnest($1::float8[]) ms UNION ALL SELECT ms, true FROM unnest($2::float8[]) ms`,
      [uncached, cached]
    );
    const exporter = testExporter(db.pool);
    await exporter.runner.refreshAll();
    const m = await exporter.scrape();
    const bucket = (cachedLabel: string, le: string) =>
      m.get(`tms_quote_request_duration_seconds_bucket{cached="${cachedLabel}",le="${le}"}`);
    const expected: Record<string, number> = {
      '0.05': 2,
      '0.1': 4,
      '0.2': 6,
      '0.3': 7,
      '0.4': 7,
      '0.5': 9,
      '0.6': 11,
      '0.75': 12,
      '1': 14,
      '2': 15,
      '5': 17,
      '+Inf': 18,
    };
    for (const [le, count] of Object.entries(expected)) assert.equal(bucket('false', le), count, `le=${le}`);
    assert.equal(m.get('tms_quote_request_duration_seconds_count{cached="false"}'), 18);
    const sumSeconds = uncached.reduce((a, b) => a + b, 0) / 1000;
    assert.ok(Math.abs(m.get('tms_quote_request_duration_seconds_sum{cached="false"}')! - sumSeconds) < 1e-9);
    assert.equal(bucket('true', '0.2'), 3);
    assert.equal(bucket('true', '0.3'), 4);
    assert.equal(m.get('tms_quote_request_duration_seconds_count{cached="true"}'), 4);

    await db.pool.query(`INSERT INTO quote_requests (response_time_ms, cached) VALUES (40, false)`);
    const restarted = testExporter(db.pool);
    await restarted.runner.refreshAll();
    const after = await restarted.scrape();
    assert.equal(after.get('tms_quote_request_duration_seconds_bucket{cached="false",le="0.05"}'), 3);
    assert.equal(after.get('tms_quote_request_duration_seconds_count{cached="false"}'), 19);
  });
});
