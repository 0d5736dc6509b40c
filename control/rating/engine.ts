import { greatCircleMiles, LOCATIONS, REGION_OF, resolveLocationId } from './locations.ts';
import type { Equipment, PricingModel } from './model.ts';

/**
 * The rating engine: pure, synchronous and deterministic. A lane costs two Map lookups (memoised
 * location text), a memoised distance, a few multiplications in integer cents and one result object.
 */
export interface Lane {
  origin: string;
  destination: string;
  equipment: Equipment;
  /** YYYY-MM-DD; its month picks the seasonality multiplier. */
  pickupDate: string;
}

export interface LaneRate {
  /** Road miles: great-circle miles x the model's circuity factor, rounded to whole miles. */
  miles: number;
  /** Dollars; linehaul + fuel = total (to the cent). Guardrail adjustments move the linehaul. */
  linehaul: number;
  fuel: number;
  total: number;
  /** total / miles in dollars, rounded to the cent; 0 for a same-city (0-mile) lane. */
  perMile: number;
  /** What the carrier is expected to cost (dollars). */
  carrierCost: number;
  /** total - carrierCost (dollars). */
  margin: number;
  modelVersion: string;
  /**
   * minimum_charge: the total is the model's minimum charge.
   * margin_floor:   the total was raised to carrier cost x (1 + minMargin).
   * regional_cap:   the total was capped at the origin region's all-in $/mi cap (never below the minimum charge).
   * needs_review:   the total is below carrier cost x (1 + minMargin) (the regional cap broke the margin floor).
   * anomaly:        (candidate vs active) the candidate's total is more than 10% away from the active model's.
   */
  flags: string[];
}

export const FLAG = {
  minimumCharge: 'minimum_charge',
  marginFloor: 'margin_floor',
  regionalCap: 'regional_cap',
  needsReview: 'needs_review',
  anomaly: 'anomaly',
} as const;

/** |candidate - active| / active above this flags the candidate's rate as an anomaly. */
export const ANOMALY_THRESHOLD = 0.1;

/** A lane the engine cannot rate; the message is meant for the caller's per-row report. */
export class RatingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RatingError';
  }
}

export function equipmentIndex(equipment: string): number {
  return equipment === 'van' ? 0 : equipment === 'reefer' ? 1 : equipment === 'flatbed' ? 2 : -1;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function digit(s: string, i: number): number {
  const c = s.charCodeAt(i) - 48;
  return c >= 0 && c <= 9 ? c : -1000;
}

/** Month index 0..11 of a valid YYYY-MM-DD date, or -1. */
export function monthIndex(date: string): number {
  if (typeof date !== 'string' || date.length !== 10 || date.charCodeAt(4) !== 45 || date.charCodeAt(7) !== 45)
    return -1;
  const year = digit(date, 0) * 1000 + digit(date, 1) * 100 + digit(date, 2) * 10 + digit(date, 3);
  const month = digit(date, 5) * 10 + digit(date, 6);
  const day = digit(date, 8) * 10 + digit(date, 9);
  if (year < 0 || month < 1 || month > 12 || day < 1) return -1;
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > DAYS_IN_MONTH[month - 1]! + (leap ? 1 : 0)) return -1;
  return month - 1;
}

// ---------------------------------------------------------------------------------------------------
// Resolution of a lane's text fields into indices (module scratch, so no per-lane allocation).

let rOrigin = -1;
let rDestination = -1;
let rEquipment = -1;
let rMonth = -1;

function locationError(role: 'origin' | 'destination', value: unknown): string {
  if (typeof value === 'string') return `unknown ${role} '${value}'`;
  if (value === undefined || value === null) return `${role} is missing`;
  return `${role} must be text ("City, ST" or a 5-digit ZIP), got ${typeof value}`;
}

/** Resolves the lane into the scratch indices; returns an error message or null. */
function resolveLane(lane: Lane): string | null {
  rOrigin = resolveLocationId(lane.origin);
  if (rOrigin < 0) return locationError('origin', lane.origin);
  rDestination = resolveLocationId(lane.destination);
  if (rDestination < 0) return locationError('destination', lane.destination);
  rEquipment = equipmentIndex(lane.equipment);
  if (rEquipment < 0) return `unknown equipment '${String(lane.equipment)}' (van, reefer or flatbed)`;
  rMonth = monthIndex(lane.pickupDate);
  if (rMonth < 0) return `invalid pickupDate '${String(lane.pickupDate)}' (expected a YYYY-MM-DD date)`;
  return null;
}

// ---------------------------------------------------------------------------------------------------
// Pricing into scratch values, all money in integer cents so the components add up exactly.

let pMiles = 0;
let pLinehaulC = 0;
let pFuelC = 0;
let pTotalC = 0;
let pCostC = 0;
let pFlags = 0;

const F_MIN = 1;
const F_FLOOR = 2;
const F_CAP = 4;
const F_REVIEW = 8;

function price(o: number, d: number, eq: number, month: number, m: PricingModel): void {
  const miles = o === d ? 0 : Math.round(greatCircleMiles(o, d) * m.circuity);
  const season = m.season[month]!;
  const linehaulC = Math.round(miles * m.rate[eq]! * season * 100);
  let fuelC = m.fuelFraction > 0 ? Math.round(linehaulC * m.fuelFraction) : Math.round(miles * m.fuelPerMile * 100);
  const costC = Math.round(miles * m.cost[eq]! * season * 100);
  const floorC = Math.ceil(costC * (1 + m.minMargin) - 1e-6);

  let totalC = linehaulC + fuelC;
  let flags = 0;
  if (totalC < m.minimumChargeCents) {
    totalC = m.minimumChargeCents;
    flags = F_MIN;
  }
  if (totalC < floorC) {
    totalC = floorC;
    flags = F_FLOOR;
  }
  const cap = m.capPerMile[REGION_OF[o]!]!;
  if (miles > 0 && cap !== Number.POSITIVE_INFINITY) {
    const capC = Math.max(Math.floor(cap * miles * 100 + 1e-6), m.minimumChargeCents);
    if (totalC > capC) {
      totalC = capC;
      flags = capC === m.minimumChargeCents ? F_MIN : F_CAP;
    }
  }
  if (totalC < floorC) flags |= F_REVIEW;

  let lineC = totalC - fuelC;
  if (lineC < 0) {
    // Only when a cap or minimum sits below the fuel surcharge alone: the total is all fuel.
    lineC = 0;
    fuelC = totalC;
  }
  pMiles = miles;
  pLinehaulC = lineC;
  pFuelC = fuelC;
  pTotalC = totalC;
  pCostC = costC;
  pFlags = flags;
}

function flagList(bits: number, anomaly: boolean): string[] {
  const flags: string[] = [];
  if (bits & F_MIN) flags.push(FLAG.minimumCharge);
  if (bits & F_FLOOR) flags.push(FLAG.marginFloor);
  if (bits & F_CAP) flags.push(FLAG.regionalCap);
  if (bits & F_REVIEW) flags.push(FLAG.needsReview);
  if (anomaly) flags.push(FLAG.anomaly);
  return flags;
}

function result(version: string, anomaly: boolean): LaneRate {
  return {
    miles: pMiles,
    linehaul: pLinehaulC / 100,
    fuel: pFuelC / 100,
    total: pTotalC / 100,
    perMile: pMiles > 0 ? Math.round(pTotalC / pMiles) / 100 : 0,
    carrierCost: pCostC / 100,
    margin: (pTotalC - pCostC) / 100,
    modelVersion: version,
    flags: flagList(pFlags, anomaly),
  };
}

/** Rates a lane, or returns why it cannot ("unknown origin 'Springfeld, IL'"). Never throws. */
export function tryRateLane(lane: Lane, model: PricingModel): LaneRate | string {
  const error = resolveLane(lane);
  if (error !== null) return error;
  price(rOrigin, rDestination, rEquipment, rMonth, model);
  return result(model.version, false);
}

/** Rates a lane; throws RatingError (message = the per-row reason) when it cannot. */
export function rateLane(lane: Lane, model: PricingModel): LaneRate {
  const r = tryRateLane(lane, model);
  if (typeof r === 'string') throw new RatingError(r);
  return r;
}

/** True when the candidate's total differs from the active one by more than ANOMALY_THRESHOLD. */
export function isAnomaly(candidateTotal: number, activeTotal: number): boolean {
  if (activeTotal <= 0) return candidateTotal !== activeTotal;
  return Math.abs(candidateTotal - activeTotal) / activeTotal > ANOMALY_THRESHOLD;
}

export interface ComparedRate extends LaneRate {
  /** The active model's total for the same lane. */
  activeTotal: number;
  activeVersion: string;
}

/** Rates a lane with a candidate model and compares it to the active one (flag `anomaly` past ±10%). */
export function tryRateCandidate(lane: Lane, candidate: PricingModel, active: PricingModel): ComparedRate | string {
  const error = resolveLane(lane);
  if (error !== null) return error;
  return compareResolved(candidate, active);
}

function compareResolved(candidate: PricingModel, active: PricingModel): ComparedRate {
  price(rOrigin, rDestination, rEquipment, rMonth, active);
  const activeC = pTotalC;
  price(rOrigin, rDestination, rEquipment, rMonth, candidate);
  return {
    ...result(candidate.version, isAnomaly(pTotalC, activeC)),
    activeTotal: activeC / 100,
    activeVersion: active.version,
  };
}

export function rateCandidate(lane: Lane, candidate: PricingModel, active: PricingModel): ComparedRate {
  const r = tryRateCandidate(lane, candidate, active);
  if (typeof r === 'string') throw new RatingError(r);
  return r;
}

// ---------------------------------------------------------------------------------------------------
// Deterministic A/B split: FNV-1a over the key's UTF-16 code units, salted with the candidate's
// version (each experiment gets its own slice of lanes), finished with murmur3's fmix32.

const FNV_OFFSET = 0x811c9dc5;

export function fnvUpdate(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The salt state for a split: FNV-1a of the salt text and a NUL separator. */
export function splitSalt(salt: string): number {
  return fnvUpdate(fnvUpdate(FNV_OFFSET, salt), '\u0000');
}

/** A key's position in [0, 1) for a salted split. */
export function splitPosition(saltState: number, key: string): number {
  return fmix32(fnvUpdate(saltState, key)) / 4294967296;
}

/**
 * The key the registry splits lanes on: canonical origin and destination (so "chicago il", "Chicago, IL"
 * and 60601 land in the same arm) and the equipment, e.g. "Chicago, IL|Atlanta, GA|van". The pickup date
 * is left out on purpose: a lane keeps its model from day to day.
 */
export function laneKey(lane: Pick<Lane, 'origin' | 'destination' | 'equipment'>): string {
  const o = resolveLocationId(lane.origin);
  const d = resolveLocationId(lane.destination);
  return `${o < 0 ? String(lane.origin) : LOCATIONS[o]!.name}|${d < 0 ? String(lane.destination) : LOCATIONS[d]!.name}|${String(lane.equipment)}`;
}

/** splitPosition(saltState, laneKey(lane)) without building the string (lane already resolved). */
function resolvedSplitPosition(saltState: number, equipment: string): number {
  let h = fnvUpdate(saltState, LOCATIONS[rOrigin]!.name);
  h = Math.imul(h ^ 124 /* | */, 0x01000193);
  h = fnvUpdate(h, LOCATIONS[rDestination]!.name);
  h = Math.imul(h ^ 124, 0x01000193);
  h = fnvUpdate(h, equipment);
  return fmix32(h) / 4294967296;
}

export interface SplitRate extends LaneRate {
  /** Which model priced the lane. */
  arm: 'active' | 'candidate';
  /** When the candidate priced it: the active model's total and version (else null). */
  activeTotal: number | null;
  activeVersion: string | null;
}

/**
 * Rates a lane with an active model and an optional candidate taking `share` of lanes (by laneKey, or by
 * `key` when given). Used by the registry snapshot; exported for workers that hold compiled models.
 */
export function tryRateSplit(
  lane: Lane,
  active: PricingModel,
  candidate: PricingModel | null,
  share: number,
  saltState: number,
  key?: string
): SplitRate | string {
  const error = resolveLane(lane);
  if (error !== null) return error;
  let arm: 'active' | 'candidate' = 'active';
  if (candidate !== null && share > 0) {
    const position =
      key === undefined ? resolvedSplitPosition(saltState, lane.equipment) : splitPosition(saltState, key);
    if (position < share) arm = 'candidate';
  }
  let activeC = -1;
  let model = active;
  if (arm === 'candidate') {
    price(rOrigin, rDestination, rEquipment, rMonth, active);
    activeC = pTotalC;
    model = candidate!;
  }
  price(rOrigin, rDestination, rEquipment, rMonth, model);
  return {
    ...result(model.version, activeC >= 0 && isAnomaly(pTotalC, activeC)),
    arm,
    activeTotal: activeC >= 0 ? activeC / 100 : null,
    activeVersion: activeC >= 0 ? active.version : null,
  };
}
