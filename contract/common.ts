import { z } from 'zod';

/**
 * Conventions every shape here follows:
 * - JSON field names are camelCase, in requests and responses. Where the Grafana app or scripts already
 *   sent a snake_case name (`company_id`, `requested_limit`, `expires_at`), the request schema accepts it
 *   too (`acceptingOldNames`), and a validation message names the field as the caller spelled it.
 * - Times are ISO 8601 strings in UTC (what JSON.stringify makes of a Date).
 * - A refusal is `ErrorBody`: `{error, details?}` with a 4xx status; a server fault is a 500
 *   `{error: 'internal error'}`.
 */

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An ISO 8601 time as the API sends it, e.g. "2026-12-01T10:00:00.000Z". */
export const Timestamp = z.string();
/** A calendar date, "2026-12-01". */
export const CalendarDate = z.string();

/** "is required" when absent, "must be <what>" when of the wrong type. */
export const need = (what: string) => ({
  error: (issue: { input?: unknown }) => (issue.input === undefined ? 'is required' : `must be ${what}`),
});

export const Uuid = z.string(need('a UUID string')).regex(UUID_PATTERN, 'must be a UUID');

/** Every refusal and failure: the message says what is wrong and where; `details` carries facts to show. */
export const ErrorBody = z.object({ error: z.string(), details: z.unknown().optional() });
export type ErrorBody = z.infer<typeof ErrorBody>;

// ---------------------------------------------------------------------------------------------------
// Old (snake_case) names still accepted in requests.
// ---------------------------------------------------------------------------------------------------

/** The old names a request schema accepts, old name -> current name; read by the service's `parseInput`. */
export const oldNamesRegistry = z.registry<{ oldNames: Readonly<Record<string, string>> }>();

/**
 * `schema` (an object of current, camelCase names) that also accepts each old name in `oldNames`: the old
 * key is renamed before validation when the current one is absent. When both are sent the old one stays
 * and a strict schema refuses it as an unknown field, so a caller never has one silently win.
 */
export function acceptingOldNames<T extends z.ZodType>(schema: T, oldNames: Readonly<Record<string, string>>) {
  const renamed = z.preprocess((input) => renameOldNames(input, oldNames), schema);
  oldNamesRegistry.add(renamed, { oldNames });
  return renamed;
}

/** `input` with each old key present (and its current name absent) renamed; other values as they are. */
export function renameOldNames(input: unknown, oldNames: Readonly<Record<string, string>>): unknown {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return input;
  const out: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  for (const [old, current] of Object.entries(oldNames)) {
    if (Object.hasOwn(out, old) && !Object.hasOwn(out, current)) {
      out[current] = out[old];
      delete out[old];
    }
  }
  return out;
}

/** A plan meter's period (UTC day or calendar month). */
export const Period = z.enum(['day', 'month']);
export type Period = z.infer<typeof Period>;

/** The next plan that includes more of a feature (the upgrade hint); hardLimit -1 = unlimited. */
export const UpgradeHint = z.object({
  plan: z.string(),
  name: z.string(),
  hardLimit: z.number(),
  softLimit: z.number(),
  period: Period,
  priceMonthly: z.number(),
});
export type UpgradeHint = z.infer<typeof UpgradeHint>;
