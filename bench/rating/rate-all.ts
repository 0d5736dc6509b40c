import { tryRateLane, type Lane, type LaneRate } from '../../control/rating/engine.ts';
import type { PricingModel, PricingModelParams } from '../../control/rating/model.ts';
import type { RegistrySnapshot } from '../../control/rating/registry.ts';

export type Mode = 'engine' | 'registry' | 'naive';

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
  } else {
    for (const lane of lanes) sum += Math.round(naive(lane, params).total * 100);
  }
  return sum;
}
