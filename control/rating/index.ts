/** control/rating: the rating engine, its location table and the pricing model registry. */
import type { Feature, FeatureDeps } from '../../core/feature.ts';
import { pricingRouter } from './routes.ts';

export {
  ANOMALY_THRESHOLD,
  FLAG,
  FLAG_BITS,
  flagNames,
  isAnomaly,
  laneKey,
  monthIndex,
  rateCandidate,
  rateLane,
  RatedBatch,
  RatingError,
  tryRateCandidate,
  tryRateLane,
  type ComparedRate,
  type Lane,
  type LaneRate,
  type SplitRate,
} from './engine.ts';
export {
  checkLocation,
  LOCATIONS,
  normalizeCity,
  REGIONS,
  resolveLocation,
  type Location,
  type Region,
} from './locations.ts';
export {
  compileModel,
  EQUIPMENT,
  parsePricingModelParams,
  PricingModelError,
  pricingModelParamsSchema,
  type Equipment,
  type FuelSurcharge,
  type PricingModel,
  type PricingModelParams,
} from './model.ts';
export {
  activate,
  createSnapshot,
  DEFAULT_CANDIDATE_SHARE,
  getModel,
  listModels,
  loadRegistry,
  MAX_CANDIDATE_SHARE,
  promoteCandidate,
  rateWithRegistry,
  registerModel,
  RegistrySnapshot,
  rollback,
  tryRateWithRegistry,
  withdrawCandidate,
  type ModelRow,
  type ModelStatus,
} from './registry.ts';
export { SEED_V1 } from './seed.ts';
export { createRatingService, type RateBatch, type RegistryRatingService } from './service.ts';

/** The rating feature: the pricing-model registry API (/api/pricing/...); bulk rating uses the engine directly. */
export function createRatingFeature({ pool }: FeatureDeps<unknown>): Feature {
  return { name: 'rating', apiRouter: pricingRouter(pool) };
}
