import { z } from 'zod';
import { UserError } from '../../core/errors.ts';
import { apiErrorMap, describeIssue } from '../../core/http.ts';
import { REGIONS, type Region } from './locations.ts';

export const EQUIPMENT = ['van', 'reefer', 'flatbed'] as const;
export type Equipment = (typeof EQUIPMENT)[number];

/** A number whose errors say "<what> is required" or "<what> must be a number". */
const num = (what: string) =>
  z.number({ error: (issue) => (issue.input === undefined ? `${what} is required` : `${what} must be a number`) });

const positiveRate = (what: string) =>
  num(what).positive(`${what} must be > 0`).max(50, `${what} must be at most 50 dollars per mile`);

const perEquipment = (what: string) =>
  z.object({ van: positiveRate(what), reefer: positiveRate(what), flatbed: positiveRate(what) }).strict();

const fuelSurchargeSchema = z.discriminatedUnion(
  'kind',
  [
    z
      .object({
        kind: z.literal('per_mile'),
        /** Dollars per loaded mile, the same for every equipment type. */
        perMile: num('fuel surcharge perMile')
          .min(0, 'fuel surcharge perMile must be >= 0')
          .max(5, 'fuel surcharge perMile must be at most 5 dollars per mile'),
      })
      .strict(),
    z
      .object({
        kind: z.literal('percent_of_linehaul'),
        /** Fraction of the linehaul: 0.2 = 20%. */
        fraction: num('fuel surcharge fraction')
          .min(0, 'fuel surcharge fraction must be >= 0')
          .max(1, 'fuel surcharge fraction must be a fraction of the linehaul, at most 1 (0.2 = 20%)'),
      })
      .strict(),
  ],
  { error: "fuelSurcharge.kind must be 'per_mile' or 'percent_of_linehaul'" }
);

const capSchema = num('a regional cap')
  .positive('a regional cap must be > 0')
  .max(50, 'a regional cap must be at most 50 dollars per mile');
const regionalCapsSchema = z
  .object(
    Object.fromEntries(REGIONS.map((r) => [r, capSchema.optional()])) as Record<Region, z.ZodOptional<typeof capSchema>>
  )
  .strict();

/** A pricing model's parameters, as stored in controlroom.pricing_models.params. */
export const pricingModelParamsSchema = z
  .object({
    version: z
      .string('version must be a string')
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
        'version must be 1-64 characters of letters, digits, ".", "_" or "-", starting with a letter or digit'
      ),
    /** Linehaul price per loaded mile by equipment (before fuel and seasonality). */
    ratePerMile: perEquipment('ratePerMile'),
    /** What the carrier costs per loaded mile by equipment, all-in (the carrier's linehaul and fuel), before seasonality. */
    costPerMile: perEquipment('costPerMile'),
    fuelSurcharge: fuelSurchargeSchema,
    /** Least total charged for any lane, same-city ones included. */
    minimumCharge: num('minimumCharge')
      .positive('minimumCharge must be > 0')
      .max(100_000, 'minimumCharge must be at most 100000'),
    /** Multipliers for January..December, applied to the linehaul price and the carrier cost. */
    seasonality: z
      .array(
        num('each seasonality multiplier')
          .min(0.5, 'seasonality multipliers must be >= 0.5')
          .max(2, 'seasonality multipliers must be <= 2'),
        'seasonality must be an array of 12 numbers'
      )
      .length(12, 'seasonality must have 12 monthly multipliers (January..December)'),
    /** Highest all-in price per mile for lanes leaving a region; a region without an entry is uncapped. */
    regionalCaps: regionalCapsSchema,
    /** Least markup over carrier cost: 0.08 = the price is at least carrier cost x 1.08. */
    minMargin: num('minMargin')
      .min(0, 'minMargin must be >= 0')
      .max(1, 'minMargin must be a fraction, at most 1 (0.08 = 8%)'),
    /** Road miles per great-circle mile. */
    circuityFactor: num('circuityFactor').min(1, 'circuityFactor must be >= 1').max(2, 'circuityFactor must be <= 2'),
  })
  .strict();

export type PricingModelParams = z.infer<typeof pricingModelParamsSchema>;
export type FuelSurcharge = PricingModelParams['fuelSurcharge'];

/** Invalid pricing model parameters (a 400); the message names the field. */
export class PricingModelError extends UserError {
  constructor(
    message: string,
    readonly issues: { path: string; message: string }[]
  ) {
    super(400, message);
    this.name = 'PricingModelError';
  }
}

/** A validated model, compiled for the engine's hot path. Treat the typed arrays as read-only. */
export interface PricingModel {
  readonly version: string;
  readonly params: Readonly<PricingModelParams>;
  /** Linehaul $/mi by equipment index (van, reefer, flatbed). */
  readonly rate: Float64Array;
  /** Carrier $/mi by equipment index. */
  readonly cost: Float64Array;
  /** January..December. */
  readonly season: Float64Array;
  /** All-in $/mi cap by region index; Infinity when uncapped. */
  readonly capPerMile: Float64Array;
  readonly fuelPerMile: number;
  readonly fuelFraction: number;
  readonly minimumChargeCents: number;
  readonly minMargin: number;
  readonly circuity: number;
}

function describe(issues: readonly z.core.$ZodIssue[], label: string): PricingModelError {
  const list = issues.map((i) => {
    const path = i.path.map(String).join('.');
    return { path: path || '(root)', message: i.message };
  });
  return new PricingModelError(`invalid pricing model${label}: ${issues.map(describeIssue).join('; ')}`, list);
}

/** Validates parameters (throws PricingModelError naming each bad field) and returns them typed. */
export function parsePricingModelParams(input: unknown, label = ''): PricingModelParams {
  const result = pricingModelParamsSchema.safeParse(input, { error: apiErrorMap });
  if (!result.success) throw describe(result.error.issues, label);
  return result.data;
}

/** Validates and compiles parameters for `rateLane`. Compile once per model, not per lane. */
export function compileModel(input: unknown): PricingModel {
  const label = isRecord(input) && typeof input.version === 'string' ? ` '${input.version}'` : '';
  const params = deepFreeze(structuredClone(parsePricingModelParams(input, label)));
  const byEquipment = (r: Record<Equipment, number>) => Float64Array.from(EQUIPMENT, (e) => r[e]);
  const caps = params.regionalCaps as Partial<Record<Region, number>>;
  return Object.freeze({
    version: params.version,
    params,
    rate: byEquipment(params.ratePerMile),
    cost: byEquipment(params.costPerMile),
    season: Float64Array.from(params.seasonality),
    capPerMile: Float64Array.from(REGIONS, (r) => caps[r] ?? Number.POSITIVE_INFINITY),
    fuelPerMile: params.fuelSurcharge.kind === 'per_mile' ? params.fuelSurcharge.perMile : 0,
    fuelFraction: params.fuelSurcharge.kind === 'percent_of_linehaul' ? params.fuelSurcharge.fraction : 0,
    minimumChargeCents: Math.round(params.minimumCharge * 100),
    minMargin: params.minMargin,
    circuity: params.circuityFactor,
  });
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

function deepFreeze<T>(value: T): T {
  if (isRecord(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
