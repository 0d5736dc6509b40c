import type { Pool } from '../../core/db.ts';
import type { RatingService } from '../bulk/rater.ts';
import type { Lane, RatedBatch } from './engine.ts';
import { checkLocation } from './locations.ts';
import { loadRegistry, rateWithRegistry } from './registry.ts';

/** Rates lanes into a batch (reused when given): RegistrySnapshot.rateBatch bound to one snapshot. */
export type RateBatch = (lanes: ArrayLike<Lane>, out?: RatedBatch) => RatedBatch;

/**
 * control/bulk's RatingService, and beside it the batch form of the same rater: one snapshot of the models
 * in force, the same split, prices and anomaly decisions, as columns without an object per lane.
 */
export interface RegistryRatingService extends RatingService {
  batchRaterForJob(pool: Pool): Promise<RateBatch>;
}

/** The rating engine behind control/bulk's RatingService contract. */
export function createRatingService(): RegistryRatingService {
  return {
    checkLocation,
    async raterForJob(pool: Pool) {
      const snapshot = await loadRegistry(pool);
      return (lane) => rateWithRegistry(lane, snapshot);
    },
    async batchRaterForJob(pool: Pool) {
      const snapshot = await loadRegistry(pool);
      return (lanes, out) => snapshot.rateBatch(lanes, out);
    },
  };
}
