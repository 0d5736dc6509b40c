import {
  equipmentIndex,
  isAnomaly,
  monthIndex,
  priceCents,
  splitSalt,
  splitToCandidate,
  type Lane,
} from '../../control/rating/engine.ts';
import { resolveLocationId } from '../../control/rating/locations.ts';
import type { RegistrySnapshot } from '../../control/rating/registry.ts';

/**
 * Where the registry path's time goes: cumulative passes over the same lanes, each one stage more than the
 * one before, built from the engine's own exported kernels (resolveLocationId, equipmentIndex, monthIndex,
 * splitToCandidate, priceCents, isAnomaly: the functions rateBatch runs). A stage's cost is its pass minus
 * the previous pass. Each function returns a checksum so that no stage can be optimised away.
 */
export type Stage = 'resolve' | 'choose' | 'ratePrimary' | 'rateCandidate' | 'compare';
export const STAGES: readonly Stage[] = ['resolve', 'choose', 'ratePrimary', 'rateCandidate', 'compare'];

export const STAGE_LABEL: Record<Stage, string> = {
  resolve: 'resolve text (origin, destination, equipment, date)',
  choose: 'choose arm (memoised split)',
  ratePrimary: 'rate primary (active model, every lane)',
  rateCandidate: 'rate candidate (its share of lanes)',
  compare: 'compare (anomaly past 10%)',
};

function fail(lane: Lane): never {
  throw new Error(`bench lane cannot be rated: ${JSON.stringify(lane)}`);
}

function resolve(lanes: readonly Lane[]): number {
  let sum = 0;
  for (const lane of lanes) {
    const o = resolveLocationId(lane.origin);
    const d = resolveLocationId(lane.destination);
    const eq = equipmentIndex(lane.equipment);
    const month = monthIndex(lane.pickupDate);
    if (o < 0 || d < 0 || eq < 0 || month < 0) fail(lane);
    sum += o + d + eq + month;
  }
  return sum;
}

function choose(lanes: readonly Lane[], salt: number, share: number): number {
  let sum = 0;
  for (const lane of lanes) {
    const o = resolveLocationId(lane.origin);
    const d = resolveLocationId(lane.destination);
    const eq = equipmentIndex(lane.equipment);
    const month = monthIndex(lane.pickupDate);
    if (o < 0 || d < 0 || eq < 0 || month < 0) fail(lane);
    sum += splitToCandidate(salt, share, o, d, eq) ? 1 : month;
  }
  return sum;
}

function rate(lanes: readonly Lane[], salt: number, snapshot: RegistrySnapshot, upTo: Stage): number {
  const { active, candidate, candidateShare: share } = snapshot;
  const withCandidate = upTo !== 'ratePrimary' && candidate !== null;
  const withCompare = upTo === 'compare';
  let sum = 0;
  for (const lane of lanes) {
    const o = resolveLocationId(lane.origin);
    const d = resolveLocationId(lane.destination);
    const eq = equipmentIndex(lane.equipment);
    const month = monthIndex(lane.pickupDate);
    if (o < 0 || d < 0 || eq < 0 || month < 0) fail(lane);
    const toCandidate = splitToCandidate(salt, share, o, d, eq);
    const activeC = priceCents(o, d, eq, month, active);
    if (toCandidate && withCandidate) {
      const candidateC = priceCents(o, d, eq, month, candidate);
      sum += withCompare && isAnomaly(candidateC, activeC) ? 1 : candidateC;
    } else sum += activeC;
  }
  return sum;
}

/** One pass over the lanes up to and including `stage`. */
export function runStage(stage: Stage, lanes: readonly Lane[], snapshot: RegistrySnapshot): number {
  const salt = splitSalt(snapshot.candidate?.version ?? '');
  if (stage === 'resolve') return resolve(lanes);
  if (stage === 'choose') return choose(lanes, salt, snapshot.candidateShare);
  return rate(lanes, salt, snapshot, stage);
}
