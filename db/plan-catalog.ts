import { planValue } from '../core/plan-targets.ts';

/**
 * The plan table (Phase 4 prices and limits, metered as Phase 6 names the meters) as the product plan
 * states it, from core/plan-targets.ts. Migration 1700000000009 seeds `plans` and `plan_features` with
 * these numbers; db/plans.test.ts compares the seeded rows with this catalogue, so a number changed in the
 * plan targets and not in a migration (or the other way round) fails the tests.
 */
export const PLAN_PRICES = [
  { plan: 'starter', monthly: planValue('starter_price_monthly'), yearly: planValue('starter_price_yearly') },
  { plan: 'pro', monthly: planValue('pro_price_monthly'), yearly: planValue('pro_price_yearly') },
  { plan: 'enterprise', monthly: planValue('enterprise_price_monthly'), yearly: planValue('enterprise_price_yearly') },
] as const;

export interface PlanLimit {
  plan: string;
  feature: string;
  hard: number;
  /** The included amount. */
  soft: number;
  period: 'day' | 'month';
}

const unlimited = planValue('enterprise_metered_limit');

/** Every plan_features row of the three live plans; a feature a plan does not list has no row. */
export const PLAN_LIMITS: readonly PlanLimit[] = [
  {
    plan: 'starter',
    feature: 'rates',
    hard: planValue('starter_rates_hard'),
    soft: planValue('starter_rates_included'),
    period: 'month',
  },
  {
    plan: 'starter',
    feature: 'directory',
    hard: planValue('starter_directory_hard'),
    soft: planValue('starter_directory_included'),
    period: 'month',
  },
  {
    plan: 'pro',
    feature: 'rates',
    hard: planValue('pro_rates_hard'),
    soft: planValue('pro_rates_included'),
    period: 'month',
  },
  {
    plan: 'pro',
    feature: 'directory',
    hard: planValue('pro_directory_hard'),
    soft: planValue('pro_directory_included'),
    period: 'month',
  },
  {
    plan: 'pro',
    feature: 'bulk_rating',
    hard: planValue('pro_bulk_rating_hard'),
    soft: planValue('pro_bulk_rating_included'),
    period: 'day',
  },
  {
    plan: 'pro',
    feature: 'api_access',
    hard: planValue('pro_api_access_hard'),
    soft: planValue('pro_api_access_included'),
    period: 'day',
  },
  { plan: 'enterprise', feature: 'rates', hard: unlimited, soft: unlimited, period: 'month' },
  { plan: 'enterprise', feature: 'directory', hard: unlimited, soft: unlimited, period: 'month' },
  { plan: 'enterprise', feature: 'bulk_rating', hard: unlimited, soft: unlimited, period: 'day' },
  { plan: 'enterprise', feature: 'api_access', hard: unlimited, soft: unlimited, period: 'day' },
  // Switches, not meters: included once.
  { plan: 'enterprise', feature: 'white_label', hard: 1, soft: 1, period: 'month' },
  { plan: 'enterprise', feature: 'dedicated_support', hard: 1, soft: 1, period: 'month' },
];
