import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { insertCompany } from '../../testing/companies.ts';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';
import { testExporter } from '../../testing/exporter.ts';

// The usage collector writes usage_daily only every twelfth refresh (and when it must); the refreshes
// between count new events in memory only. These tests hold it to exactness across that split.

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => db.drop());
beforeEach(async () => {
  await db.pool.query(
    `TRUNCATE usage_events, org_entitlements, companies RESTART IDENTITY CASCADE;
     DELETE FROM controlroom.exporter_state; DELETE FROM controlroom.usage_daily`
  );
});

const tenant = (name: string, plan: string) =>
  insertCompany(db.pool, name, plan, { stripeCustomerId: 'cus', stripeSubscriptionId: 'sub' });

async function use(companyId: string, qty: number): Promise<void> {
  await db.pool.query(`INSERT INTO usage_events (company_id, feature_key, qty) VALUES ($1, 'rates', $2)`, [
    companyId,
    qty,
  ]);
}

/** usage_daily as stored, and as it should be (every folded event of the stored cursor's range, summed). */
async function rollup(): Promise<{ stored: number; watermark: number; expected: number }> {
  const { rows } = await db.pool.query<{ stored: string; watermark: string; expected: string }>(
    `WITH s AS (SELECT (state->'cursor'->>'watermark')::bigint AS w FROM controlroom.exporter_state WHERE collector = 'usage')
     SELECT (SELECT coalesce(sum(qty), 0) FROM controlroom.usage_daily) AS stored,
            (SELECT w FROM s) AS watermark,
            (SELECT coalesce(sum(qty), 0) FROM usage_events WHERE id <= (SELECT w FROM s)) AS expected`
  );
  return {
    stored: Number(rows[0]!.stored),
    watermark: Number(rows[0]!.watermark),
    expected: Number(rows[0]!.expected),
  };
}

describe('usage: read-only refreshes between write steps', () => {
  test('counts in memory between writes; a restart at any point, and usage_daily, agree with the events', async () => {
    const id = await tenant('Busy Freight', 'starter'); // rates: 50 included per month
    const exporter = testExporter(db.pool);
    await use(id, 10);
    await exporter.runner.refreshOne('usage'); // the first refresh writes
    assert.deepEqual(await rollup(), { stored: 10, watermark: 1, expected: 10 });

    await use(id, 31);
    await exporter.runner.refreshOne('usage'); // read-only: counted, not written
    assert.equal(await exporter.value('tms_usage_ratio', { company_id: id, feature: 'rates' }), 0.82);
    assert.deepEqual(await rollup(), { stored: 10, watermark: 1, expected: 10 }, 'nothing written yet');
    const restarted = testExporter(db.pool);
    await restarted.runner.refreshOne('usage'); // reads the unwritten event again, and writes it
    assert.equal(await restarted.value('tms_usage_ratio', { company_id: id, feature: 'rates' }), 0.82);
    assert.deepEqual(await rollup(), { stored: 41, watermark: 2, expected: 41 });

    // The first instance finds the cursor moved: it drops what it had not written and reloads.
    await use(id, 2);
    await exporter.runner.refreshOne('usage');
    assert.equal(await exporter.value('tms_usage_ratio', { company_id: id, feature: 'rates' }), 0.86);

    // Thirty more refreshes, one event each: two write steps among them; memory and storage stay exact.
    let total = 43;
    for (let i = 1; i <= 30; i++) {
      await use(id, i % 3);
      total += i % 3;
      await exporter.runner.refreshOne('usage');
      const ratio = await exporter.value('tms_usage_ratio', { company_id: id, feature: 'rates' });
      assert.equal(ratio, total / 50, `refresh ${i}`);
      const r = await rollup();
      assert.equal(r.stored, r.expected, `refresh ${i}: usage_daily holds exactly the events up to the stored cursor`);
    }
    const { watermark } = await rollup();
    assert.ok(watermark > 3, 'write steps came between the read-only refreshes');
    const later = testExporter(db.pool);
    await later.runner.refreshOne('usage');
    assert.equal(await later.value('tms_usage_ratio', { company_id: id, feature: 'rates' }), total / 50);
  });
});

describe('usage: catch-up steps bigger than one call can take as arguments (core/arrays.ts)', () => {
  // A step reads up to EXPORTER_BATCH_IDS (1,000,000) events; with 100,000 tenants their deltas ran past
  // the ~120,000 arguments a spread push takes, and the collector failed on every refresh (core/arrays.ts).
  // 200,000 events, each on a day of its own, are 200,000 deltas in one step, in both kinds of refresh.
  const DAYS = 200_000;
  const eventsOnDistinctDays = (companyId: string, feature: string) =>
    db.pool.query(
      `INSERT INTO usage_events (company_id, feature_key, qty, occurred_at)
       SELECT $1, $2, 1, timestamptz '1400-01-01 12:00Z' + make_interval(days => i) FROM generate_series(1, $3::int) i`,
      [companyId, feature, DAYS]
    );
  const refreshErrors = async (exporter: ReturnType<typeof testExporter>) =>
    (await exporter.value('controlroom_exporter_collect_errors_total', { collector: 'usage' })) ?? 0;

  test('the write step and the read-only refresh both fold them, exactly', async () => {
    const id = await tenant('Long History Freight', 'starter');
    await eventsOnDistinctDays(id, 'rates');
    const exporter = testExporter(db.pool);
    await exporter.runner.refreshOne('usage'); // the first refresh is a write step
    assert.equal(await refreshErrors(exporter), 0);
    assert.deepEqual(await rollup(), { stored: DAYS, watermark: DAYS, expected: DAYS });
    const { rows } = await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM controlroom.usage_daily`);
    assert.equal(Number(rows[0]!.n), DAYS, 'one usage_daily row per day');

    await eventsOnDistinctDays(id, 'api_access');
    await exporter.runner.refreshOne('usage'); // read-only: counted in memory
    assert.equal(await refreshErrors(exporter), 0);
    await exporter.runner.refreshOne('usage'); // that many unwritten deltas make this one a write step
    assert.equal(await refreshErrors(exporter), 0);
    assert.deepEqual(await rollup(), { stored: 2 * DAYS, watermark: 2 * DAYS, expected: 2 * DAYS });
  });
  test('a step that passes more gaps than one call takes as arguments keeps the newest and goes on', async () => {
    // Every other id missing (rolled back, or purged before the cursor came): 150,000 gaps in one step.
    const id = await tenant('Gappy Freight', 'starter');
    await db.pool.query(
      `INSERT INTO usage_events (company_id, feature_key, qty) SELECT $1, 'rates', 1 FROM generate_series(1, 300000)`,
      [id]
    );
    await db.pool.query(`DELETE FROM usage_events WHERE id % 2 = 0`);
    const exporter = testExporter(db.pool);
    await exporter.runner.refreshOne('usage');
    assert.equal(await refreshErrors(exporter), 0);
    assert.deepEqual(await rollup(), { stored: 150_000, watermark: 299_999, expected: 150_000 });
    assert.equal(await exporter.value('controlroom_exporter_open_id_gaps', { collector: 'usage' }), 10_000);
    assert.equal(await exporter.value('controlroom_exporter_abandoned_id_gaps_total', { collector: 'usage' }), 139_999);
  });
});
