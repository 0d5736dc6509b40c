import type { Pool } from '../../core/db.ts';
import type { Lane, RatedBatch } from '../rating/engine.ts';
import type { LaneRow, LocationCheck } from './lanes.ts';

export interface RatedLane {
  miles: number;
  linehaul: number;
  fuel: number;
  total: number;
  perMile: number;
  modelVersion: string;
  /** The arm of the registry's A/B split that priced the lane; the pricing drift metrics count by it. */
  arm: 'active' | 'candidate';
  flags: string[];
}

/** Rates one lane; throws an Error whose message is the per-lane failure reason. */
export type RateLane = (lane: Omit<LaneRow, 'line'>) => RatedLane;

/**
 * Rates many lanes into columns (reused when `out` is given), one snapshot of the models in force; a
 * lane that cannot be rated is marked failed with its reason, never thrown (control/rating's rateBatch).
 */
export type RateLanes = (lanes: ArrayLike<Lane>, out?: RatedBatch) => RatedBatch;

/** What the bulk jobs need from the rating engine (control/rating). */
export interface RatingService {
  /** Cheap location check used while validating an upload. */
  checkLocation: LocationCheck;
  /** A rater bound to the pricing models in force now (active, and candidate with its A/B share). */
  raterForJob(pool: Pool): Promise<RateLane>;
  /** The same, in batch form: what chunked jobs are rated with (no object per result). */
  batchRaterForJob(pool: Pool): Promise<RateLanes>;
}
