import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../cli/config.ts';
import { addBusinessDays, fromWallClock, isKnownTimeZone, wallClock } from './business-days.ts';
import { slaDeadlines } from './sla.ts';

const due = (startIso: string, days: number, zone: string) =>
  addBusinessDays(new Date(startIso), days, zone).toISOString();
const hoursBetween = (a: string, b: string) => (Date.parse(b) - Date.parse(a)) / 3_600_000;

// 2026-11-23 is a Monday; 2026-11-27 a Friday.
test('UTC: a weekday page is due the same time N weekdays later, skipping the weekend', () => {
  assert.equal(due('2026-11-23T10:00:00Z', 1, 'UTC'), '2026-11-24T10:00:00.000Z', 'Monday → Tuesday');
  assert.equal(due('2026-11-26T10:00:00Z', 3, 'UTC'), '2026-12-01T10:00:00.000Z', 'Thursday + 3 → Tuesday');
  assert.equal(due('2026-11-23T10:00:00.250Z', 0, 'UTC'), '2026-11-23T10:00:00.250Z', '0 days: now');
});

test('a Friday-evening page is due Monday evening (1 business day) and Wednesday evening (3)', () => {
  assert.equal(due('2026-11-27T18:30:00Z', 1, 'UTC'), '2026-11-30T18:30:00.000Z');
  assert.equal(due('2026-11-27T18:30:00Z', 3, 'UTC'), '2026-12-02T18:30:00.000Z');
  assert.equal(due('2026-11-27T23:59:59Z', 1, 'UTC'), '2026-11-30T23:59:59.000Z');
});

test('a weekend page starts its clock at 00:00 on Monday', () => {
  assert.equal(due('2026-11-28T10:00:00Z', 1, 'UTC'), '2026-12-01T00:00:00.000Z', 'Saturday → Tuesday 00:00');
  assert.equal(due('2026-11-29T23:59:00Z', 1, 'UTC'), '2026-12-01T00:00:00.000Z', 'Sunday night → Tuesday 00:00');
  assert.equal(due('2026-11-29T12:00:00Z', 3, 'UTC'), '2026-12-03T00:00:00.000Z', 'Sunday + 3 → Thursday 00:00');
  assert.equal(due('2026-11-28T10:00:00Z', 0, 'UTC'), '2026-11-30T00:00:00.000Z', 'Saturday + 0 → Monday 00:00');
});

test("the weekend is the time zone's: Saturday 02:00 UTC is still Friday evening in New York", () => {
  // 2026-11-28T02:00Z = Friday 21:00 EST → Monday 21:00 EST = Tuesday 02:00Z.
  assert.equal(due('2026-11-28T02:00:00Z', 1, 'America/New_York'), '2026-12-01T02:00:00.000Z');
  assert.equal(due('2026-11-28T02:00:00Z', 1, 'UTC'), '2026-12-01T00:00:00.000Z', 'in UTC it is a Saturday');
  // Sunday 2026-11-29T16:00Z = Monday 01:00 in Tokyo: a business day there, not in UTC.
  assert.equal(due('2026-11-29T16:00:00Z', 1, 'Asia/Tokyo'), '2026-11-30T16:00:00.000Z');
  assert.equal(due('2026-11-29T16:00:00Z', 1, 'UTC'), '2026-12-01T00:00:00.000Z');
});

test('daylight saving: the deadline keeps the wall-clock time, so the elapsed budget is an hour longer or shorter', () => {
  // Berlin leaves summer time on Sunday 2026-10-25: Friday 18:00 CEST (16:00Z) → Monday 18:00 CET (17:00Z), 73 h.
  const berlin = due('2026-10-23T16:00:00Z', 1, 'Europe/Berlin');
  assert.equal(berlin, '2026-10-26T17:00:00.000Z');
  assert.equal(hoursBetween('2026-10-23T16:00:00Z', berlin), 73);
  // New York enters summer time on Sunday 2026-03-08: Friday 12:00 EST (17:00Z) → Monday 12:00 EDT (16:00Z), 71 h.
  const newYork = due('2026-03-06T17:00:00Z', 1, 'America/New_York');
  assert.equal(newYork, '2026-03-09T16:00:00.000Z');
  assert.equal(hoursBetween('2026-03-06T17:00:00Z', newYork), 71);
});

test('daylight saving on a weekday: a deadline in the skipped hour moves forward, a repeated hour takes the earlier instant', () => {
  // Israel enters summer time on Friday 2026-03-27 at 02:00 (clocks jump to 03:00). A page on Thursday at
  // 02:30 IST (00:30Z) is due Friday 02:30, which does not exist: 03:30 IDT = 00:30Z, 24 h later.
  assert.equal(due('2026-03-26T00:30:00Z', 1, 'Asia/Jerusalem'), '2026-03-27T00:30:00.000Z');
  // Israel leaves summer time on Sunday 2026-10-25 at 02:00 (back to 01:00): 01:30 occurs twice; the first is 22:30Z.
  assert.equal(
    fromWallClock(
      { year: 2026, month: 10, day: 25, hour: 1, minute: 30, second: 0, millisecond: 0 },
      'Asia/Jerusalem'
    ).toISOString(),
    '2026-10-24T22:30:00.000Z'
  );
  // A Friday 01:30 IDT page in that week (22:30Z Thursday) + 1 business day: Monday 01:30 IST = 23:30Z Sunday.
  assert.equal(due('2026-10-22T22:30:00Z', 1, 'Asia/Jerusalem'), '2026-10-25T23:30:00.000Z');
});

test('wall clock round trip across zones', () => {
  for (const zone of ['UTC', 'America/New_York', 'Europe/Berlin', 'Asia/Kolkata', 'Australia/Lord_Howe']) {
    for (const iso of ['2026-01-15T12:34:56.789Z', '2026-07-01T00:00:00Z', '2026-10-25T03:30:00Z']) {
      const w = wallClock(new Date(iso), zone);
      assert.equal(fromWallClock(w, zone).toISOString(), new Date(iso).toISOString(), `${zone} ${iso}`);
    }
  }
  assert.equal(wallClock(new Date('2026-11-28T02:00:00Z'), 'America/New_York').weekday, 5);
  // 01:30Z on 2026-10-25 is 02:30 CET, a wall-clock time Berlin shows twice: it names the earlier instant.
  assert.equal(
    fromWallClock(wallClock(new Date('2026-10-25T01:30:00Z'), 'Europe/Berlin'), 'Europe/Berlin').toISOString(),
    '2026-10-25T00:30:00.000Z'
  );
});

test('SLA deadlines per severity: P1 4 h around the clock, P2 1 and P3 3 business days', () => {
  const saturday = new Date('2026-11-28T10:00:00Z');
  assert.equal(slaDeadlines('P1', saturday, 'UTC').acknowledgeBy.toISOString(), '2026-11-28T14:00:00.000Z');
  assert.equal(slaDeadlines('P1', saturday, 'UTC').resolveBy.toISOString(), '2026-11-28T14:00:00.000Z');
  assert.equal(slaDeadlines('P2', saturday, 'UTC').acknowledgeBy.toISOString(), '2026-12-01T00:00:00.000Z');
  assert.equal(
    slaDeadlines('P3', new Date('2026-11-27T18:30:00Z'), 'UTC').resolveBy.toISOString(),
    '2026-12-02T18:30:00.000Z'
  );
});

test('INCIDENT_SLA_TIME_ZONE: an IANA zone, default UTC; an unknown one stops start-up naming the variable', () => {
  assert.equal(loadConfig({}).INCIDENT_SLA_TIME_ZONE, 'UTC');
  assert.equal(loadConfig({ INCIDENT_SLA_TIME_ZONE: 'Europe/Berlin' }).INCIDENT_SLA_TIME_ZONE, 'Europe/Berlin');
  assert.throws(
    () => loadConfig({ INCIDENT_SLA_TIME_ZONE: 'Mars/Olympus' }),
    /INCIDENT_SLA_TIME_ZONE: unknown time zone "Mars\/Olympus"/
  );
  assert.equal(isKnownTimeZone('Not/AZone'), false);
  assert.throws(() => addBusinessDays(new Date(), -1, 'UTC'), /whole number/);
});
