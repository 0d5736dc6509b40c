/**
 * Business-day arithmetic for the incident SLA budgets (P2: 1 business day, P3: 3 business days).
 *
 * A business day is a calendar day Monday to Friday in the configured IANA time zone (INCIDENT_SLA_TIME_ZONE,
 * default UTC), all 24 hours of it: the plan gives the budget in days, not in office hours. The rule:
 * - a page on a business day is due the same local wall-clock time N business days later
 *   (Friday 18:30 + 1 business day = Monday 18:30);
 * - a page on a Saturday or Sunday starts its clock at 00:00 of the next Monday
 *   (Saturday 10:00 + 1 business day = Tuesday 00:00).
 * The weekend and the day boundaries are those of the zone, so whether a page falls on a Friday evening or
 * a Saturday depends on the zone, and a daylight-saving change between page and deadline makes the budget
 * one hour longer or shorter in elapsed time while keeping the wall-clock time. A deadline whose wall-clock
 * time does not exist (the hour skipped when clocks go forward) moves forward by the skipped hour; one that
 * exists twice (clocks go back) is the earlier instant.
 *
 * Public holidays are NOT handled: a holiday on a weekday counts as a business day, so a budget spanning one
 * is a day shorter than the plan may mean (Control Room errs towards calling a breach, never hides one).
 * The plan names no holiday calendar, and one per region would need a data source this project lacks.
 */

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Whether the runtime knows the IANA zone (e.g. "Europe/Berlin"); "UTC" always is. */
export function isKnownTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

export interface WallClock {
  year: number;
  /** 1–12 */
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  millisecond: number;
  /** 0 = Sunday … 6 = Saturday, of the local date. */
  weekday: number;
}

/** The wall-clock time of an instant in a zone. */
export function wallClock(at: Date, timeZone: string): WallClock {
  const ms = at.getTime();
  const parts = Object.fromEntries(
    formatter(timeZone)
      .formatToParts(at)
      .map((p) => [p.type, p.value])
  );
  const year = Number(parts.year);
  const month = Number(parts.month);
  const day = Number(parts.day);
  return {
    year,
    month,
    day,
    hour: Number(parts.hour),
    minute: Number(parts.minute),
    second: Number(parts.second),
    millisecond: ((ms % 1000) + 1000) % 1000,
    weekday: new Date(Date.UTC(year, month - 1, day)).getUTCDay(),
  };
}

/** The zone's offset from UTC at an instant, in milliseconds (east positive). */
function offsetAt(ms: number, timeZone: string): number {
  const w = wallClock(new Date(ms), timeZone);
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second, w.millisecond) - ms;
}

/** The instant a wall-clock time in a zone names (see the module comment for skipped and repeated times). */
export function fromWallClock(w: Omit<WallClock, 'weekday'>, timeZone: string): Date {
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second, w.millisecond);
  const DAY = 86_400_000;
  // Offsets in force a day either side cover any single transition near the wall-clock time.
  const offsets = [
    ...new Set([offsetAt(asUtc - DAY, timeZone), offsetAt(asUtc, timeZone), offsetAt(asUtc + DAY, timeZone)]),
  ];
  const exact = offsets
    .map((offset) => asUtc - offset)
    .filter((ms) => offsetAt(ms, timeZone) === asUtc - ms)
    .sort((a, b) => a - b);
  if (exact.length > 0) return new Date(exact[0]!);
  // Skipped by a clock change: with the offset from before the change, the instant lands after it,
  // moved forward by the length of the gap.
  return new Date(asUtc - offsetAt(asUtc - DAY, timeZone));
}

const isWeekend = (weekday: number) => weekday === 0 || weekday === 6;

/** A calendar date `days` after the given one (proleptic Gregorian, no zone involved). */
function shiftDate(year: number, month: number, day: number, days: number) {
  const d = new Date(Date.UTC(year, month - 1, day + days));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), weekday: d.getUTCDay() };
}

/** The deadline `days` business days (Mon–Fri in `timeZone`) after `start`; see the module comment. */
export function addBusinessDays(start: Date, days: number, timeZone: string): Date {
  if (!Number.isInteger(days) || days < 0) throw new Error(`business days must be a whole number ≥ 0, got ${days}`);
  const local = wallClock(start, timeZone);
  let date = { year: local.year, month: local.month, day: local.day, weekday: local.weekday };
  let time = { hour: local.hour, minute: local.minute, second: local.second, millisecond: local.millisecond };
  if (isWeekend(date.weekday)) {
    while (isWeekend(date.weekday)) date = shiftDate(date.year, date.month, date.day, 1);
    time = { hour: 0, minute: 0, second: 0, millisecond: 0 };
  }
  for (let left = days; left > 0;) {
    date = shiftDate(date.year, date.month, date.day, 1);
    if (!isWeekend(date.weekday)) left--;
  }
  if (days === 0 && !isWeekend(local.weekday)) return new Date(start);
  return fromWallClock({ year: date.year, month: date.month, day: date.day, ...time }, timeZone);
}
