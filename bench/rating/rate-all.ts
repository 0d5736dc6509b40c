import { RatedBatch, tryRateLane, type Lane, type LaneRate } from '../../control/rating/engine.ts';
import type { PricingModel, PricingModelParams } from '../../control/rating/model.ts';
import type { RegistrySnapshot } from '../../control/rating/registry.ts';

/**
 * engine:         tryRateLane per lane, the active model only.
 * registry:       snapshot.tryRate per lane (the per-lane API bulk jobs use): split, both prices on the
 *                 candidate's lanes, anomaly check, one result object per lane.
 * registry-batch: snapshot.rateBatch over batches of BATCH_LANES into one reused RatedBatch (columns).
 * naive:          the baseline in naive.ts.
 */
export type Mode = 'engine' | 'registry' | 'registry-batch' | 'naive';

/** Lanes per rateBatch call: BULK_RATE_BATCH's default, what a bulk job reads and commits at a time. */
export const BATCH_LANES = 5_000;

/** The lanes cut into batches once (as a job's reads hand them over), outside the timed passes. */
const batchesOf = new WeakMap<readonly Lane[], Lane[][]>();
function batches(lanes: readonly Lane[]): Lane[][] {
  let cut = batchesOf.get(lanes);
  if (!cut) {
    cut = [];
    for (let i = 0; i < lanes.length; i += BATCH_LANES) cut.push(lanes.slice(i, i + BATCH_LANES));
    batchesOf.set(lanes, cut);
  }
  return cut;
}

const reused = new RatedBatch(BATCH_LANES);

/** Rates every lane; returns the sum of totals in cents (a checksum that also keeps the work alive). */
export function rateAll(
  mode: Mode,
  lanes: readonly Lane[],
  model: PricingModel,
  snapshot: RegistrySnapshot,
  params: PricingModelParams,
  naive: (lane: Lane, p: PricingModelParams) => LaneRate
): number {
  let sum = 0;
  if (mode === 'engine') {
    for (const lane of lanes) {
      const r = tryRateLane(lane, model);
      if (typeof r === 'string') throw new Error(r);
      sum += Math.round(r.total * 100);
    }
  } else if (mode === 'registry') {
    for (const lane of lanes) {
      const r = snapshot.tryRate(lane);
      if (typeof r === 'string') throw new Error(r);
      sum += Math.round(r.total * 100);
    }
  } else if (mode === 'registry-batch') {
    for (const batch of batches(lanes)) {
      const rated = snapshot.rateBatch(batch, reused);
      if (rated.failedCount > 0) throw new Error(rated.errorAt(rated.failed.indexOf(1))!);
      const totals = rated.totalCents;
      for (let i = 0; i < rated.length; i++) sum += totals[i]!;
    }
  } else {
    for (const lane of lanes) sum += Math.round(naive(lane, params).total * 100);
  }
  return sum;
}
