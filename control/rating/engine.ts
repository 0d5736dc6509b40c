import { greatCircleMiles, LOCATION_COUNT, LOCATIONS, REGION_OF, resolveLocationId } from './locations.ts';
import { EQUIPMENT, type Equipment, type PricingModel } from './model.ts';

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
const F_ANOMALY = 16;

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

/** splitPosition(saltState, laneKey(lane)) for resolved ids, without building the key string. */
function idSplitPosition(saltState: number, o: number, d: number, eq: number): number {
  let h = fnvUpdate(saltState, LOCATIONS[o]!.name);
  h = Math.imul(h ^ 124 /* | */, 0x01000193);
  h = fnvUpdate(h, LOCATIONS[d]!.name);
  h = Math.imul(h ^ 124, 0x01000193);
  h = fnvUpdate(h, EQUIPMENT[eq]!);
  return fmix32(h) / 4294967296;
}

// ---------------------------------------------------------------------------------------------------
// The split, memoised. Under laneKey a lane's arm depends only on (origin, destination, equipment) and
// the split (salt, share), so it is hashed once per distinct lane and kept in a byte table of
// LOCATION_COUNT² x 3 cells (about 1.1 MB). The decision is the hash's own (position < share, the same
// comparison as armOf), only remembered. The last few splits keep their tables, so the snapshot each
// bulk job loads starts warm when the registry has not changed; a new candidate version or share gets
// a new table, so a stale decision can never be reused.

const EQUIPMENT_COUNT = EQUIPMENT.length;
const ARM_CELLS = LOCATION_COUNT * LOCATION_COUNT * EQUIPMENT_COUNT;
const ARM_UNKNOWN = 0;
const ARM_ACTIVE = 1;
const ARM_CANDIDATE = 2;
/** Bounded: at most this many tables (1.1 MB each) are kept; the oldest goes first. */
const ARM_TABLES_KEPT = 4;
const armTables = new Map<string, Uint8Array>();
let armTableSalt = Number.NaN;
let armTableShare = Number.NaN;
let armTable: Uint8Array = new Uint8Array(0);

function selectArmTable(saltState: number, share: number): Uint8Array {
  const key = `${saltState}/${share}`;
  let table = armTables.get(key);
  if (table === undefined) {
    if (armTables.size >= ARM_TABLES_KEPT) armTables.delete(armTables.keys().next().value!);
    table = new Uint8Array(ARM_CELLS);
    armTables.set(key, table);
  }
  armTableSalt = saltState;
  armTableShare = share;
  armTable = table;
  return table;
}

/**
 * Whether the split (saltState, share) sends the lane (origin id, destination id, equipment index) to the
 * candidate: the same answer as `splitPosition(saltState, laneKey(lane)) < share`, hashed once per lane.
 */
export function splitToCandidate(saltState: number, share: number, o: number, d: number, eq: number): boolean {
  const table = saltState === armTableSalt && share === armTableShare ? armTable : selectArmTable(saltState, share);
  const cell = (o * LOCATION_COUNT + d) * EQUIPMENT_COUNT + eq;
  let arm = table[cell]!;
  if (arm === ARM_UNKNOWN) {
    arm = idSplitPosition(saltState, o, d, eq) < share ? ARM_CANDIDATE : ARM_ACTIVE;
    table[cell] = arm;
  }
  return arm === ARM_CANDIDATE;
}

/**
 * The pricing kernel every rating function runs: the total in cents of resolved ids (origin, destination,
 * equipment index, month index) under a model. Exported for diagnostics (the benchmark's breakdown) and
 * callers that hold resolved ids; the ids must be valid (no checks here).
 */
export function priceCents(o: number, d: number, eq: number, month: number, model: PricingModel): number {
  price(o, d, eq, month, model);
  return pTotalC;
}

// ---------------------------------------------------------------------------------------------------
// The split kernel: one resolved lane through the registry's split. The per-lane API (tryRateSplit) and
// the batch API (rateSplitBatch) both run it, so they cannot disagree.

/** Whether the candidate priced the lane; then the active model's total (cents) and the anomaly decision. */
let sCandidate = false;
let sActiveC = -1;
let sAnomaly = false;

function priceSplit(
  active: PricingModel,
  candidate: PricingModel | null,
  share: number,
  saltState: number,
  key: string | undefined
): void {
  let toCandidate = false;
  if (candidate !== null && share > 0) {
    toCandidate =
      key === undefined
        ? splitToCandidate(saltState, share, rOrigin, rDestination, rEquipment)
        : splitPosition(saltState, key) < share;
  }
  if (toCandidate) {
    price(rOrigin, rDestination, rEquipment, rMonth, active);
    const activeC = pTotalC;
    price(rOrigin, rDestination, rEquipment, rMonth, candidate!);
    sActiveC = activeC;
    sAnomaly = isAnomaly(pTotalC, activeC);
  } else {
    price(rOrigin, rDestination, rEquipment, rMonth, active);
    sActiveC = -1;
    sAnomaly = false;
  }
  sCandidate = toCandidate;
}

export interface SplitRate extends LaneRate {
  /** Which model priced the lane. */
  arm: 'active' | 'candidate';
  /** When the candidate priced it: the active model's total and version (else null). */
  activeTotal: number | null;
  activeVersion: string | null;
}

/** The object form of one lane (fixed shape, built in one literal: no spread, no dictionary-mode object). */
function splitRate(
  miles: number,
  linehaulC: number,
  fuelC: number,
  totalC: number,
  costC: number,
  bits: number,
  candidateArm: boolean,
  activeC: number,
  active: PricingModel,
  candidate: PricingModel | null
): SplitRate {
  return {
    miles,
    linehaul: linehaulC / 100,
    fuel: fuelC / 100,
    total: totalC / 100,
    perMile: miles > 0 ? Math.round(totalC / miles) / 100 : 0,
    carrierCost: costC / 100,
    margin: (totalC - costC) / 100,
    modelVersion: candidateArm ? candidate!.version : active.version,
    flags: flagList(bits, (bits & F_ANOMALY) !== 0),
    arm: candidateArm ? 'candidate' : 'active',
    activeTotal: candidateArm ? activeC / 100 : null,
    activeVersion: candidateArm ? active.version : null,
  };
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
  priceSplit(active, candidate, share, saltState, key);
  return splitRate(
    pMiles,
    pLinehaulC,
    pFuelC,
    pTotalC,
    pCostC,
    sAnomaly ? pFlags | F_ANOMALY : pFlags,
    sCandidate,
    sActiveC,
    active,
    candidate
  );
}

// ---------------------------------------------------------------------------------------------------
// Batch API: the split kernel over many lanes into columns (typed arrays, money in integer cents), with
// no object per lane. A batch is reusable: rate the next lanes into the same one.

/** Bits of RatedBatch.flags, one per FLAG. */
export const FLAG_BITS = {
  minimumCharge: F_MIN,
  marginFloor: F_FLOOR,
  regionalCap: F_CAP,
  needsReview: F_REVIEW,
  anomaly: F_ANOMALY,
} as const;

/** The flag names of a RatedBatch.flags value, in the order the per-lane API lists them. */
export function flagNames(bits: number): string[] {
  return flagList(bits, (bits & F_ANOMALY) !== 0);
}

/**
 * Columnar results, index-aligned with the lanes rated into it (indices 0..length-1). A failed lane has
 * `failed[i] = 1`, its reason in errorAt(i) and zeros elsewhere. `arm[i]` is 1 when the candidate priced
 * the lane; then `activeTotalCents[i]` holds the active model's total, else -1.
 */
export class RatedBatch {
  length = 0;
  failedCount = 0;
  candidateCount = 0;
  anomalyCount = 0;
  failed: Uint8Array;
  arm: Uint8Array;
  /** FLAG_BITS. */
  flags: Uint8Array;
  miles: Float64Array;
  linehaulCents: Float64Array;
  fuelCents: Float64Array;
  totalCents: Float64Array;
  carrierCostCents: Float64Array;
  activeTotalCents: Float64Array;
  /** The models of the last rateSplitBatch into this batch. */
  active: PricingModel | null = null;
  candidate: PricingModel | null = null;
  private readonly errors = new Map<number, string>();

  constructor(capacity = 0) {
    this.failed = new Uint8Array(capacity);
    this.arm = new Uint8Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.miles = new Float64Array(capacity);
    this.linehaulCents = new Float64Array(capacity);
    this.fuelCents = new Float64Array(capacity);
    this.totalCents = new Float64Array(capacity);
    this.carrierCostCents = new Float64Array(capacity);
    this.activeTotalCents = new Float64Array(capacity);
  }

  get capacity(): number {
    return this.failed.length;
  }

  /** Empties the batch for `count` lanes (grows the columns when needed). */
  reset(count: number, active: PricingModel, candidate: PricingModel | null): void {
    if (count > this.capacity) {
      const grown = new RatedBatch(Math.max(count, this.capacity * 2));
      this.failed = grown.failed;
      this.arm = grown.arm;
      this.flags = grown.flags;
      this.miles = grown.miles;
      this.linehaulCents = grown.linehaulCents;
      this.fuelCents = grown.fuelCents;
      this.totalCents = grown.totalCents;
      this.carrierCostCents = grown.carrierCostCents;
      this.activeTotalCents = grown.activeTotalCents;
    }
    this.length = count;
    this.failedCount = 0;
    this.candidateCount = 0;
    this.anomalyCount = 0;
    this.active = active;
    this.candidate = candidate;
    this.errors.clear();
  }

  fail(i: number, reason: string): void {
    this.failed[i] = 1;
    this.arm[i] = 0;
    this.flags[i] = 0;
    this.miles[i] = 0;
    this.linehaulCents[i] = 0;
    this.fuelCents[i] = 0;
    this.totalCents[i] = 0;
    this.carrierCostCents[i] = 0;
    this.activeTotalCents[i] = -1;
    this.errors.set(i, reason);
    this.failedCount++;
  }

  /** Why lane i could not be rated, or null when it was. */
  errorAt(i: number): string | null {
    return this.errors.get(i) ?? null;
  }

  /** Lane i in the per-lane API's form: deep-equal to what tryRateSplit returns for it. */
  rateAt(i: number): SplitRate | string {
    if (!(i >= 0 && i < this.length)) throw new RangeError(`lane ${i} is outside the batch (0..${this.length - 1})`);
    if (this.failed[i] === 1) return this.errors.get(i)!;
    return splitRate(
      this.miles[i]!,
      this.linehaulCents[i]!,
      this.fuelCents[i]!,
      this.totalCents[i]!,
      this.carrierCostCents[i]!,
      this.flags[i]!,
      this.arm[i] === 1,
      this.activeTotalCents[i]!,
      this.active!,
      this.candidate
    );
  }
}

/**
 * tryRateSplit over `lanes` into `out` (reset first): the same split, prices, flags and anomaly decisions,
 * as columns. `keys[i]`, when given, splits lane i by that key instead of laneKey. Never throws for a bad
 * lane: its reason goes to out.errorAt(i).
 */
export function rateSplitBatch(
  lanes: ArrayLike<Lane>,
  active: PricingModel,
  candidate: PricingModel | null,
  share: number,
  saltState: number,
  out: RatedBatch = new RatedBatch(lanes.length),
  keys?: ArrayLike<string>
): RatedBatch {
  const n = lanes.length;
  if (keys !== undefined && keys.length !== n)
    throw new RangeError(`keys has ${keys.length} entries for ${n} lanes (one key per lane)`);
  out.reset(n, active, candidate);
  const { failed, arm, flags, miles, linehaulCents, fuelCents, totalCents, carrierCostCents, activeTotalCents } = out;
  let candidates = 0;
  let anomalies = 0;
  for (let i = 0; i < n; i++) {
    const error = resolveLane(lanes[i]!);
    if (error !== null) {
      out.fail(i, error);
      continue;
    }
    priceSplit(active, candidate, share, saltState, keys === undefined ? undefined : keys[i]);
    failed[i] = 0;
    miles[i] = pMiles;
    linehaulCents[i] = pLinehaulC;
    fuelCents[i] = pFuelC;
    totalCents[i] = pTotalC;
    carrierCostCents[i] = pCostC;
    activeTotalCents[i] = sActiveC;
    if (sCandidate) {
      arm[i] = 1;
      candidates++;
      if (sAnomaly) {
        flags[i] = pFlags | F_ANOMALY;
        anomalies++;
      } else flags[i] = pFlags;
    } else {
      arm[i] = 0;
      flags[i] = pFlags;
    }
  }
  out.candidateCount = candidates;
  out.anomalyCount = anomalies;
  return out;
}
