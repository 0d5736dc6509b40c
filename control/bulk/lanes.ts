export const EQUIPMENT = ['van', 'reefer', 'flatbed'] as const;
export type Equipment = (typeof EQUIPMENT)[number];

export interface LaneRow {
  /** Line in the CSV file (or index + 1 in a JSON array), for error reports and results. */
  line: number;
  origin: string;
  destination: string;
  equipment: Equipment;
  pickupDate: string;
}

export interface RowError {
  line: number;
  reason: string;
}

/** Returns why a location cannot be rated ("unknown origin 'X'"), or null when it can. */
export type LocationCheck = (text: string, role: 'origin' | 'destination') => string | null;

const MAX_TEXT = 100;
const MAX_DAYS_AHEAD = 365;
const DAY_MS = 86_400_000;

/** One lane, checked field by field; every problem of the row is reported, not just the first. */
export function validateLane(
  raw: Record<string, unknown>,
  line: number,
  checkLocation: LocationCheck,
  todayUtc: string
): LaneRow | RowError {
  const problems: string[] = [];
  const text = (field: string) => {
    const value = raw[field];
    if (value === undefined || value === null || String(value).trim() === '') {
      problems.push(`${field} is missing`);
      return '';
    }
    const s = String(value).trim();
    if (s.length > MAX_TEXT) problems.push(`${field} is longer than ${MAX_TEXT} characters`);
    return s;
  };
  const origin = text('origin');
  const destination = text('destination');
  const equipmentText = text('equipment').toLowerCase();
  const pickupDate = text('pickup_date');

  if (origin) {
    const problem = checkLocation(origin, 'origin');
    if (problem) problems.push(problem);
  }
  if (destination) {
    const problem = checkLocation(destination, 'destination');
    if (problem) problems.push(problem);
  }
  if (equipmentText && !(EQUIPMENT as readonly string[]).includes(equipmentText)) {
    problems.push(`equipment '${equipmentText}' is not one of ${EQUIPMENT.join(', ')}`);
  }
  if (pickupDate) {
    const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(pickupDate);
    const time = match ? Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) : Number.NaN;
    if (!match || Number.isNaN(time) || new Date(time).toISOString().slice(0, 10) !== pickupDate) {
      problems.push(`pickup_date '${pickupDate}' is not a date (YYYY-MM-DD)`);
    } else {
      const today = Date.parse(`${todayUtc}T00:00:00Z`);
      if (time < today) problems.push(`pickup_date ${pickupDate} is in the past`);
      else if (time > today + MAX_DAYS_AHEAD * DAY_MS)
        problems.push(`pickup_date ${pickupDate} is more than ${MAX_DAYS_AHEAD} days ahead`);
    }
  }
  if (problems.length > 0) return { line, reason: problems.join('; ') };
  return { line, origin, destination, equipment: equipmentText as Equipment, pickupDate };
}

export const isRowError = (r: LaneRow | RowError): r is RowError => 'reason' in r;
