import type { PricingModelParams } from './model.ts';

/**
 * The initial active model `v1`, seeded by db/migrations/1700000000005_pricing-models.sql (a test checks
 * that the two agree). 2026 US dry van / reefer / flatbed contract-style pricing:
 *   all-in per mile before seasonality = linehaul + $0.46 fuel: van $2.41, reefer $2.78, flatbed $2.98;
 *   carrier cost (all-in) van $2.08, reefer $2.42, flatbed $2.60 (about a 14-16% markup);
 *   seasonality peaks in produce season (May-June) and Q4 (Nov-Dec), troughs in January-February.
 */
export const SEED_V1: PricingModelParams = {
  version: 'v1',
  ratePerMile: { van: 1.95, reefer: 2.32, flatbed: 2.52 },
  costPerMile: { van: 2.08, reefer: 2.42, flatbed: 2.6 },
  fuelSurcharge: { kind: 'per_mile', perMile: 0.46 },
  minimumCharge: 350,
  seasonality: [0.96, 0.95, 0.98, 1.01, 1.05, 1.07, 1.03, 1.0, 0.99, 1.01, 1.04, 1.07],
  regionalCaps: {
    Northeast: 4.25,
    Southeast: 3.75,
    Midwest: 3.75,
    'South Central': 3.5,
    Mountain: 3.75,
    'West Coast': 4.25,
    'Pacific Northwest': 4.0,
  },
  minMargin: 0.08,
  circuityFactor: 1.2,
};
