import fs from 'node:fs';
import { parse } from 'csv-parse/sync';

/**
 * The shipped table of US city centroids (data/locations.csv) and the lookup the engine uses.
 * Accepted inputs: "City, ST" (case and spacing free; "St."/"Saint", "Ft."/"Fort", "Mt."/"Mount";
 * a full state name works too; "City ST" without the comma as well), optionally followed by a ZIP
 * ("Chicago, IL 60601"), or a 5-digit ZIP (ZIP+4 allowed) matched on its first three digits.
 */
export const REGIONS = [
  'Northeast',
  'Southeast',
  'Midwest',
  'South Central',
  'Mountain',
  'West Coast',
  'Pacific Northwest',
] as const;
export type Region = (typeof REGIONS)[number];

export interface Location {
  /** Index in `LOCATIONS`. */
  readonly id: number;
  readonly city: string;
  readonly state: string;
  readonly zip3: string;
  readonly lat: number;
  readonly lon: number;
  readonly region: Region;
  readonly regionIndex: number;
  /** Canonical "City, ST". */
  readonly name: string;
}

const STATE_NAMES: Record<string, string> = {
  AL: 'Alabama',
  AZ: 'Arizona',
  AR: 'Arkansas',
  CA: 'California',
  CO: 'Colorado',
  CT: 'Connecticut',
  DE: 'Delaware',
  DC: 'District of Columbia',
  FL: 'Florida',
  GA: 'Georgia',
  ID: 'Idaho',
  IL: 'Illinois',
  IN: 'Indiana',
  IA: 'Iowa',
  KS: 'Kansas',
  KY: 'Kentucky',
  LA: 'Louisiana',
  ME: 'Maine',
  MD: 'Maryland',
  MA: 'Massachusetts',
  MI: 'Michigan',
  MN: 'Minnesota',
  MS: 'Mississippi',
  MO: 'Missouri',
  MT: 'Montana',
  NE: 'Nebraska',
  NV: 'Nevada',
  NH: 'New Hampshire',
  NJ: 'New Jersey',
  NM: 'New Mexico',
  NY: 'New York',
  NC: 'North Carolina',
  ND: 'North Dakota',
  OH: 'Ohio',
  OK: 'Oklahoma',
  OR: 'Oregon',
  PA: 'Pennsylvania',
  RI: 'Rhode Island',
  SC: 'South Carolina',
  SD: 'South Dakota',
  TN: 'Tennessee',
  TX: 'Texas',
  UT: 'Utah',
  VT: 'Vermont',
  VA: 'Virginia',
  WA: 'Washington',
  WV: 'West Virginia',
  WI: 'Wisconsin',
  WY: 'Wyoming',
};
/** Lower-case state name or code → code. */
const STATE_LOOKUP = new Map<string, string>();
for (const [code, name] of Object.entries(STATE_NAMES)) {
  STATE_LOOKUP.set(code.toLowerCase(), code);
  STATE_LOOKUP.set(name.toLowerCase(), code);
}
STATE_LOOKUP.set('washington dc', 'DC');
STATE_LOOKUP.set('d c', 'DC');

const TOKEN_ALIASES: Record<string, string> = { st: 'saint', ste: 'sainte', ft: 'fort', mt: 'mount', pt: 'port' };

/** "St. Louis" / "saint  louis" / "ST LOUIS" → "saint louis"; "Winston-Salem" → "winston salem". */
export function normalizeCity(city: string): string {
  return city
    .toLowerCase()
    .replace(/[.'’]/g, '')
    .replace(/[-_/]+/g, ' ')
    .split(/\s+/)
    .filter((t) => t !== '')
    .map((t) => TOKEN_ALIASES[t] ?? t)
    .join(' ');
}

function normalizeState(state: string): string | undefined {
  const key = state.toLowerCase().replace(/\./g, ' ').replace(/\s+/g, ' ').trim();
  return STATE_LOOKUP.get(key);
}

function loadTable(): Location[] {
  const file = new URL('./data/locations.csv', import.meta.url);
  const records = parse(fs.readFileSync(file, 'utf8'), { columns: true, skip_empty_lines: true, trim: true }) as Record<
    string,
    string
  >[];
  const seenZip = new Set<string>();
  const seenName = new Set<string>();
  return records.map((r, i) => {
    const where = `control/rating/data/locations.csv row ${i + 2}`;
    const city = r.city ?? '';
    const state = r.state ?? '';
    const zip3 = r.zip3 ?? '';
    const lat = Number(r.lat);
    const lon = Number(r.lon);
    const region = r.region as Region;
    const regionIndex = REGIONS.indexOf(region);
    if (!city) throw new Error(`${where}: city is empty`);
    if (!STATE_NAMES[state]) throw new Error(`${where}: state '${state}' is not a US state code`);
    if (!/^\d{3}$/.test(zip3)) throw new Error(`${where}: zip3 '${zip3}' is not three digits`);
    if (!(lat >= 24 && lat <= 50) || !(lon >= -125 && lon <= -66))
      throw new Error(`${where}: ${r.lat},${r.lon} is outside the contiguous US`);
    if (regionIndex < 0) throw new Error(`${where}: region '${r.region}' is not one of ${REGIONS.join(', ')}`);
    if (seenZip.has(zip3)) throw new Error(`${where}: zip3 ${zip3} appears twice`);
    const key = `${normalizeCity(city)}|${state}`;
    if (seenName.has(key)) throw new Error(`${where}: ${city}, ${state} appears twice`);
    seenZip.add(zip3);
    seenName.add(key);
    return Object.freeze({ id: i, city, state, zip3, lat, lon, region, regionIndex, name: `${city}, ${state}` });
  });
}

export const LOCATIONS: readonly Location[] = Object.freeze(loadTable());
export const LOCATION_COUNT = LOCATIONS.length;

const byKey = new Map<string, number>();
const byZip3 = new Map<string, number>();
for (const l of LOCATIONS) {
  byKey.set(`${normalizeCity(l.city)}|${l.state}`, l.id);
  byZip3.set(l.zip3, l.id);
}

/** Region index per location id (hot path: no object hop). */
export const REGION_OF = Int8Array.from(LOCATIONS, (l) => l.regionIndex);

// ---------------------------------------------------------------------------------------------------
// Resolution. The hot path is one Map lookup on the raw text; the parse below runs once per distinct
// spelling and its answer (also "unknown") is remembered. The memo is bounded: garbage input can only
// make it restart, never grow without limit.

const MEMO_MAX = 200_000;
const memo = new Map<string, number>();
function seedMemo(): void {
  memo.clear();
  for (const l of LOCATIONS) memo.set(l.name, l.id);
}
seedMemo();

const ZIP_RE = /^(\d{3})\d{2}(?:-\d{4})?$/;
const TRAILING_ZIP_RE = /^(.*?)\s+(\d{5}(?:-\d{4})?)$/;
const NO_COMMA_RE = /^(.*\S)\s+([A-Za-z]{2})$/;

function parseLocation(input: string): number {
  let s = input.trim();
  const zip = ZIP_RE.exec(s);
  if (zip) return byZip3.get(zip[1]!) ?? -1;
  let zip3: string | undefined;
  const trailing = TRAILING_ZIP_RE.exec(s);
  if (trailing) {
    s = trailing[1]!.replace(/,\s*$/, '');
    zip3 = trailing[2]!.slice(0, 3);
  }
  let city: string;
  let state: string;
  const comma = s.lastIndexOf(',');
  if (comma >= 0) {
    city = s.slice(0, comma);
    state = s.slice(comma + 1);
  } else {
    const m = NO_COMMA_RE.exec(s);
    if (!m) return zip3 !== undefined ? (byZip3.get(zip3) ?? -1) : -1;
    city = m[1]!;
    state = m[2]!;
  }
  const code = normalizeState(state);
  const id = code ? byKey.get(`${normalizeCity(city)}|${code}`) : undefined;
  if (id !== undefined) return id;
  return zip3 !== undefined ? (byZip3.get(zip3) ?? -1) : -1;
}

/** Location id for a "City, ST" or ZIP text, or -1 when it is not in the table. */
export function resolveLocationId(input: string): number {
  const hit = memo.get(input);
  if (hit !== undefined) return hit;
  if (typeof input !== 'string') return -1;
  const id = input.length > 200 ? -1 : parseLocation(input);
  if (memo.size >= MEMO_MAX) seedMemo();
  memo.set(input, id);
  return id;
}

export function resolveLocation(input: string): Location | undefined {
  const id = resolveLocationId(input);
  return id < 0 ? undefined : LOCATIONS[id];
}

/** For upload validation: why a location cannot be rated ("unknown origin 'X'"), or null when it can. */
export function checkLocation(text: string, role: 'origin' | 'destination'): string | null {
  return resolveLocationId(text) < 0 ? `unknown ${role} '${text}'` : null;
}

// ---------------------------------------------------------------------------------------------------
// Great-circle distance, memoised per pair in a flat matrix (-1 = not computed yet).

const EARTH_RADIUS_MILES = 3958.8;
const RAD = Math.PI / 180;
const latRad = Float64Array.from(LOCATIONS, (l) => l.lat * RAD);
const lonRad = Float64Array.from(LOCATIONS, (l) => l.lon * RAD);
const cosLat = Float64Array.from(latRad, (x) => Math.cos(x));
const gcMatrix = new Float64Array(LOCATION_COUNT * LOCATION_COUNT).fill(-1);

/** Haversine miles between two table locations. */
export function greatCircleMiles(a: number, b: number): number {
  const cell = a * LOCATION_COUNT + b;
  const cached = gcMatrix[cell]!;
  if (cached >= 0) return cached;
  const sinDLat = Math.sin((latRad[b]! - latRad[a]!) / 2);
  const sinDLon = Math.sin((lonRad[b]! - lonRad[a]!) / 2);
  const h = sinDLat * sinDLat + cosLat[a]! * cosLat[b]! * sinDLon * sinDLon;
  const miles = 2 * EARTH_RADIUS_MILES * Math.asin(Math.min(1, Math.sqrt(h)));
  gcMatrix[cell] = miles;
  gcMatrix[b * LOCATION_COUNT + a] = miles;
  return miles;
}
