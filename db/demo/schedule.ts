/**
 * When things happen: the daily traffic curve and the hourly incident schedule. Both are pure functions of
 * the clock, so an incident recurs every hour for dashboards and alerts, and a test can force one simply
 * by choosing a time inside its window.
 */

const DAY_SECONDS = 86_400;
/** US freight brokers are busiest mid-afternoon Eastern (19:00 UTC) and quietest before dawn (07:00 UTC). */
const PEAK_HOUR_UTC = 19;
const NIGHT_FLOOR = 0.3;
const AMPLITUDE = (1 - NIGHT_FLOOR) / 2;
/** Average of the curve over a day: turns "per day" budgets into per-second rates at the peak. */
export const MEAN_DIURNAL = NIGHT_FLOOR + AMPLITUDE;

function phase(seconds: number): number {
  return (2 * Math.PI * seconds) / DAY_SECONDS - (2 * Math.PI * PEAK_HOUR_UTC) / 24;
}

/** Traffic multiplier at `at`: 0.3 at night, 1.0 at the afternoon peak, smooth in between. */
export function diurnalFactor(at: Date): number {
  return MEAN_DIURNAL + AMPLITUDE * Math.cos(phase(at.getTime() / 1000));
}

/**
 * Integral of the curve over [from, to] in seconds: how many "peak seconds" of traffic the window held.
 * Seeding uses it so history has exactly the volume live ticks would have produced.
 */
export function diurnalSeconds(from: Date, to: Date): number {
  const a = from.getTime() / 1000;
  const b = to.getTime() / 1000;
  if (b <= a) return 0;
  const k = DAY_SECONDS / (2 * Math.PI);
  return MEAN_DIURNAL * (b - a) + AMPLITUDE * k * (Math.sin(phase(b)) - Math.sin(phase(a)));
}

export type IncidentKind = 'error_burst' | 'slow_quotes' | 'agent_failures';

export interface Incident {
  kind: IncidentKind;
  summary: string;
  startsAt: Date;
  endsAt: Date;
  region?: string;
}

interface ScheduledIncident {
  kind: IncidentKind;
  fromMinute: number;
  /** Exclusive. */
  untilMinute: number;
  summary: string;
  region?: string;
}

export const ERROR_BURST_REGION = 'us-east-1';

export const INCIDENT_SCHEDULE: readonly ScheduledIncident[] = [
  {
    kind: 'error_burst',
    fromMinute: 10,
    untilMinute: 14,
    region: ERROR_BURST_REGION,
    summary: 'us-east-1 answers ~20% of API calls with 5xx',
  },
  { kind: 'slow_quotes', fromMinute: 35, untilMinute: 40, summary: 'uncached rate quotes take 4x longer' },
  {
    kind: 'agent_failures',
    fromMinute: 50,
    untilMinute: 55,
    summary: 'carrier-docs provider times out: sync_carrier_docs fails ~40% and the agent queue backs up',
  },
];

/** Incidents in progress at `at` (UTC minutes of the hour). */
export function activeIncidents(at: Date): Incident[] {
  const minute = at.getUTCMinutes();
  const hourStart = Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate(), at.getUTCHours());
  return INCIDENT_SCHEDULE.filter((s) => minute >= s.fromMinute && minute < s.untilMinute).map((s) => ({
    kind: s.kind,
    summary: s.summary,
    startsAt: new Date(hourStart + s.fromMinute * 60_000),
    endsAt: new Date(hourStart + s.untilMinute * 60_000),
    ...(s.region ? { region: s.region } : {}),
  }));
}

export function hasIncident(incidents: readonly Incident[], kind: IncidentKind): boolean {
  return incidents.some((i) => i.kind === kind);
}

export function startOfUtcMonth(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
}

export function startOfUtcDay(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
}

export const addSeconds = (at: Date, seconds: number): Date => new Date(at.getTime() + seconds * 1000);
export const addDays = (at: Date, days: number): Date => addSeconds(at, days * DAY_SECONDS);
