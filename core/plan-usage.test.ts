import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { insertCompany } from '../testing/companies.ts';
import { createTestDatabase, type TestDatabase } from '../testing/postgres.ts';
import {
  companyFeatureUsage,
  nextPlanFor,
  overageOf,
  periodBounds,
  previousPeriod,
  thresholdsCrossed,
  usageAgainstPlan,
  usageBand,
  usageRatio,
  wouldExceed,
} from './plan-usage.ts';

describe('period and limit semantics', () => {
  test('UTC calendar days and months, also across a year end', () => {
    const at = new Date('2026-12-31T23:59:59.999Z');
    const month = periodBounds('month', at);
    assert.deepEqual(
      [month.start, month.startAt.toISOString(), month.endAt.toISOString()],
      ['2026-12-01', '2026-12-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z']
    );
    const day = periodBounds('day', at);
    assert.deepEqual([day.start, day.endAt.toISOString()], ['2026-12-31', '2027-01-01T00:00:00.000Z']);
    assert.equal(periodBounds('day', new Date('2027-01-01T00:00:00Z')).start, '2027-01-01');
    assert.equal(previousPeriod(periodBounds('month', new Date('2027-01-15T10:00:00Z'))).start, '2026-12-01');
    assert.equal(previousPeriod(periodBounds('day', new Date('2027-03-01T10:00:00Z'))).start, '2027-02-28');
  });

  test('warnings are measured against the included amount: 80 and 90 % before any overage, 100 % when billing starts', () => {
    // pro rates: 500 included, 1000 hard
    assert.deepEqual(thresholdsCrossed(399, 500), []);
    assert.deepEqual(thresholdsCrossed(400, 500), [80]);
    assert.deepEqual(thresholdsCrossed(450, 500), [80, 90]);
    assert.equal(overageOf(450, 500), 0, 'nothing billed at 90 %');
    assert.deepEqual(thresholdsCrossed(500, 500), [80, 90, 100]);
    assert.equal(overageOf(500, 500), 0, 'the included amount is used up, the next unit is billed');
    assert.equal(overageOf(501, 500), 1);
    assert.equal(usageRatio(750, 500), 1.5);
    assert.equal(usageBand(1.5), 'over');
    assert.equal(usageBand(0.9), '90to100');
    assert.equal(usageBand(0.8), '80to90');
    assert.equal(usageBand(0.79), 'lt80');
    // pro bulk jobs: 5 included, 10 hard
    assert.deepEqual(thresholdsCrossed(4, 5), [80]);
    assert.deepEqual(thresholdsCrossed(5, 5), [80, 90, 100]);
    // unlimited and not included have no ratio, no thresholds, no overage
    assert.equal(usageRatio(10_000, -1), null);
    assert.deepEqual(thresholdsCrossed(10_000, -1), []);
    assert.equal(overageOf(10_000, -1), 0);
    assert.equal(usageRatio(3, 0), null);
  });

  test('the hard limit blocks: not included, or one more unit would pass it; unlimited never', () => {
    assert.equal(wouldExceed(9, 1, 10), false);
    assert.equal(wouldExceed(10, 1, 10), true);
    assert.equal(wouldExceed(0, 1, 0), true);
    assert.equal(wouldExceed(1e9, 1, -1), false);
  });
});

describe('usage from usage_events against the plan', () => {
  let db: TestDatabase;
  let pro: string;
  let starter: string;
  let enterprise: string;
  const at = new Date('2030-06-01T08:00:00Z'); // the first day of a month and of a day

  before(async () => {
    db = await createTestDatabase();
    pro = await insertCompany(db.pool, 'Usage Pro', 'pro');
    starter = await insertCompany(db.pool, 'Usage Starter', 'starter');
    enterprise = await insertCompany(db.pool, 'Usage Enterprise', 'enterprise');
    const use = (id: string, feature: string, qty: number, iso: string) =>
      db.pool.query(`INSERT INTO usage_events (company_id, feature_key, qty, occurred_at) VALUES ($1, $2, $3, $4)`, [
        id,
        feature,
        qty,
        iso,
      ]);
    await use(pro, 'rates', 420, '2030-06-01T07:00:00Z');
    await use(pro, 'rates', 999, '2030-05-31T23:59:59Z'); // last month
    await use(pro, 'bulk_rating', 1, '2030-06-01T01:00:00Z');
    await use(pro, 'bulk_rating', 1, '2030-06-01T07:59:00Z');
    await use(pro, 'bulk_rating', 1, '2030-05-31T12:00:00Z'); // yesterday
    await use(pro, 'bulk_rating', 1, '2030-06-01T09:00:00Z'); // after `at`, still today
  });
  after(async () => db?.drop());

  test('the current periods, and with includePreviousPeriod the ones that just ended', async () => {
    const current = await usageAgainstPlan(db.pool, { companyId: pro, at });
    const byFeature = Object.fromEntries(current.map((u) => [u.feature, u]));
    assert.deepEqual(Object.keys(byFeature).sort(), ['api_access', 'bulk_rating', 'directory', 'rates']);
    assert.deepEqual(
      [byFeature.rates!.used, byFeature.rates!.periodStart, byFeature.rates!.ratio, byFeature.rates!.thresholdsCrossed],
      [420, '2030-06-01', 0.84, [80]]
    );
    assert.deepEqual(
      [
        byFeature.bulk_rating!.used,
        byFeature.bulk_rating!.period,
        byFeature.bulk_rating!.remaining,
        byFeature.bulk_rating!.blocked,
      ],
      [3, 'day', 7, false]
    );

    const withPrevious = await usageAgainstPlan(db.pool, {
      companyId: pro,
      feature: 'rates',
      at,
      includePreviousPeriod: true,
    });
    assert.deepEqual(
      withPrevious.map((u) => [u.periodStart, u.current, u.used, u.overage]),
      [
        ['2030-05-01', false, 999, 499],
        ['2030-06-01', true, 420, 0],
      ]
    );
    const limited = await usageAgainstPlan(db.pool, { limitedOnly: true, at });
    assert.ok(
      limited.every((u) => u.companyId !== enterprise || u.hardLimit > 0),
      'unlimited features are not "limited"'
    );
  });

  test('a feature the plan does not include, and the next plan that includes more', async () => {
    const bulk = await companyFeatureUsage(db.pool, starter, 'bulk_rating', at);
    assert.deepEqual(
      [bulk?.plan, bulk?.included, bulk?.hardLimit, bulk?.blocked, bulk?.period],
      ['starter', false, 0, true, 'day']
    );
    assert.equal(await companyFeatureUsage(db.pool, '00000000-0000-4000-8000-000000000000', 'rates', at), null);

    assert.deepEqual(await nextPlanFor(db.pool, 'starter', 'bulk_rating', 0), {
      plan: 'pro',
      name: 'Pro',
      hardLimit: 10,
      softLimit: 5,
      period: 'day',
      priceMonthly: 299,
    });
    assert.equal((await nextPlanFor(db.pool, 'pro', 'bulk_rating', 10))?.plan, 'enterprise');
    assert.equal((await nextPlanFor(db.pool, 'starter', 'rates', 100))?.plan, 'pro');
    assert.equal(await nextPlanFor(db.pool, 'enterprise', 'rates', -1), null);
    assert.equal((await nextPlanFor(db.pool, 'revoked', 'rates', 0))?.plan, 'starter');
    assert.equal((await nextPlanFor(db.pool, null, 'bulk_rating', 0))?.plan, 'pro');
  });
});
