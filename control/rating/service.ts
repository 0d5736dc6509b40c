import type { Pool } from '../../core/db.ts';
import type { RatingService } from '../bulk/rater.ts';
import { checkLocation } from './locations.ts';
import { loadRegistry, rateWithRegistry } from './registry.ts';

/** The rating engine behind control/bulk's RatingService contract. */
export function createRatingService(): RatingService {
  return {
    checkLocation,
    async raterForJob(pool: Pool) {
      const snapshot = await loadRegistry(pool);
      return (lane) => rateWithRegistry(lane, snapshot);
    },
  };
}
