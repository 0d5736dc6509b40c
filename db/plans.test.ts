import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../testing/postgres.ts';
import { PLAN_LIMITS, PLAN_PRICES, type PlanLimit } from './plan-catalog.ts';

/** The seeded plans are the product plan's table (Phase 4), metered as Phase 6 names the meters. */
let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => db?.drop());

test('prices are 99 / 299 / 999 a month and 990 / 2990 / 9990 a year', async () => {
  const { rows } = await db.pool.query<{
    id: string;
    tier: number;
    is_active: boolean;
    price_monthly: string;
    price_yearly: string;
  }>(`SELECT id, tier, is_active, price_monthly::text, price_yearly::text FROM plans WHERE is_active ORDER BY tier`);
  assert.deepEqual(
    rows.map((r) => [r.id, r.tier, r.price_monthly, r.price_yearly]),
    [
      ['starter', 1, '99.00', '990.00'],
      ['pro', 2, '299.00', '2990.00'],
      ['enterprise', 3, '999.00', '9990.00'],
    ]
  );
});

test('limits are exactly the plan table (hard / soft, -1 unlimited); features a plan does not list are absent', async () => {
  const { rows } = await db.pool.query<{
    plan_id: string;
    feature_key: string;
    hard_limit: string;
    soft_limit: string;
    period: string;
  }>(
    `SELECT plan_id, feature_key, hard_limit::text, soft_limit::text, period FROM plan_features
      WHERE plan_id IN ('starter', 'pro', 'enterprise') ORDER BY plan_id, feature_key`
  );
  assert.deepEqual(
    rows.map((r) => `${r.plan_id} ${r.feature_key} ${r.hard_limit}/${r.soft_limit} per ${r.period}`),
    [
      'enterprise api_access -1/-1 per day',
      'enterprise bulk_rating -1/-1 per day',
      'enterprise dedicated_support 1/1 per month',
      'enterprise directory -1/-1 per month',
      'enterprise rates -1/-1 per month',
      'enterprise white_label 1/1 per month',
      'pro api_access 10000/5000 per day',
      'pro bulk_rating 10/5 per day',
      'pro directory 500/250 per month',
      'pro rates 1000/500 per month',
      'starter directory 50/25 per month',
      'starter rates 100/50 per month',
    ]
  );
});

test('the meters are quotes per month, bulk jobs per day and directory invites per month', async () => {
  const { rows } = await db.pool.query<{ key: string; description: string }>(
    `SELECT key, description FROM features WHERE key IN ('rates', 'bulk_rating', 'directory') ORDER BY key`
  );
  assert.deepEqual(
    rows.map((r) => [r.key, r.description]),
    [
      ['bulk_rating', 'Bulk rating (jobs per day)'],
      ['directory', 'Carrier directory invitations (invites per month)'],
      ['rates', 'Rate quotes (quotes per month)'],
    ]
  );
});

test('the seed is the catalogue built from core/plan-targets.ts (one number, one place)', async () => {
  const prices = await db.pool.query<{ id: string; price_monthly: string; price_yearly: string }>(
    `SELECT id, price_monthly::text, price_yearly::text FROM plans WHERE is_active ORDER BY tier`
  );
  assert.deepEqual(
    prices.rows.map((r) => ({ plan: r.id, monthly: Number(r.price_monthly), yearly: Number(r.price_yearly) })),
    PLAN_PRICES.map((p) => ({ ...p }))
  );
  const limits = await db.pool.query<{
    plan_id: string;
    feature_key: string;
    hard_limit: number;
    soft_limit: number;
    period: string;
  }>(
    `SELECT plan_id, feature_key, hard_limit, soft_limit, period FROM plan_features
      WHERE plan_id IN ('starter', 'pro', 'enterprise') ORDER BY plan_id, feature_key`
  );
  const key = (l: PlanLimit) => `${l.plan} ${l.feature}`;
  assert.deepEqual(
    limits.rows.map((r) => ({
      plan: r.plan_id,
      feature: r.feature_key,
      hard: Number(r.hard_limit),
      soft: Number(r.soft_limit),
      period: r.period,
    })),
    [...PLAN_LIMITS].sort((a, b) => key(a).localeCompare(key(b)))
  );
});
