import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createPool, type Pool } from '../core/db.ts';
import { testExporter } from '../testing/exporter.ts';
import { createTestDatabase, type TestDatabase } from '../testing/postgres.ts';
import { seriesOf } from '../testing/prom-text.ts';

/**
 * Two instances' exporters on one database (README, "Running two instances"): they share the collectors'
 * persisted state, so each refresh continues from whatever either committed, and both export the same
 * totals (a dashboard takes `max without(instance)`, never the sum). Refreshing at the same moment is
 * routine on a pair, not a collector error.
 */

let db: TestDatabase;
const pools: Pool[] = [];

before(async () => {
  db = await createTestDatabase();
  for (const name of ['exporter-a', 'exporter-b'])
    pools.push(createPool(db.url, { max: 4, statementTimeoutMs: 30_000, applicationName: name }));
});
after(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await db.drop();
});

test('two exporters refreshing at once export the same, exact totals and count no collector error', async () => {
  const [a, b] = pools.map((pool) => testExporter(pool));
  let inserted = 0;
  for (let round = 0; round < 8; round++) {
    const n = 50 + round * 7;
    await db.pool.query(
      `INSERT INTO api_requests (region, status_code, route)
       SELECT 'us-east-1', CASE WHEN i % 10 = 0 THEN 500 ELSE 200 END, '/v1/quotes' FROM generate_series(1, $1) AS i`,
      [n]
    );
    inserted += n;
    await Promise.all([a!.runner.refreshAll(), b!.runner.refreshAll()]);
    const [ma, mb] = await Promise.all([a!.scrape(), b!.scrape()]);
    const totalsA = Object.fromEntries(seriesOf(ma, 'tms_api_requests_total'));
    const totalsB = Object.fromEntries(seriesOf(mb, 'tms_api_requests_total'));
    assert.deepEqual(totalsA, totalsB, `round ${round}: the two instances export different totals`);
    const sum = Object.values(totalsA).reduce((s, v) => s + v, 0);
    assert.equal(sum, inserted, `round ${round}: every request counted once`);
    for (const [name, m] of [
      ['a', ma],
      ['b', mb],
    ] as const) {
      const errors = [...seriesOf(m, 'controlroom_exporter_collect_errors_total')].filter(([, v]) => v > 0);
      assert.deepEqual(errors, [], `round ${round}: instance ${name} counted collector errors`);
    }
  }
});
