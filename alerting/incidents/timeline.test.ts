import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { withTransaction } from '../../core/db.ts';
import { testExporter, testSettings } from '../../testing/exporter.ts';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';
import { seriesKey } from '../../testing/prom-text.ts';
import { storeNotification } from '../receiver/inbox.ts';
import { alertmanagerPayload } from '../receiver/payloads.ts';
import { amPayload, type TestAlert } from '../../testing/receiver-harness.ts';
import { IncidentsCollector } from './collector.ts';
import { acknowledgeIncidentOfPage, recordIncidentTimeline, resolveIncidentOfPage } from './timeline.ts';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => db.drop());
beforeEach(async () => {
  await db.pool.query(
    `TRUNCATE controlroom.incidents, controlroom.alert_events, controlroom.alert_notifications, controlroom.slack_pages, audit_log CASCADE`
  );
});

const UTC = { timeZone: 'UTC' };

/** Stores a notification as the webhook would, received at a chosen instant. */
async function deliver(groupKey: string, alerts: TestAlert[], receivedAt: string): Promise<number> {
  const stored = await storeNotification(
    db.pool,
    'alertmanager',
    alertmanagerPayload.parse(amPayload(groupKey, alerts))
  );
  await db.pool.query(`UPDATE controlroom.alert_events SET received_at = $2 WHERE notification_id = $1`, [
    stored.notificationId,
    receivedAt,
  ]);
  return stored.newEvents;
}

const incidents = async (groupKey?: string) =>
  (
    await db.pool.query(
      `SELECT id, group_key, severity, alertnames, paged_at, ack_due_at, resolve_due_at, acknowledged_at, acknowledged_by, acknowledged_via,
              resolved_at, resolved_by, resolved_via
         FROM controlroom.incidents WHERE $1::text IS NULL OR group_key = $1 ORDER BY id`,
      [groupKey ?? null]
    )
  ).rows;
const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

describe('the incident timeline of an alert group', () => {
  test('paged at the first firing notification, resolved (and acknowledged) when every alert resolved, again on a new firing', async () => {
    const g = 'g:paging';
    await deliver(g, [{ alertname: 'QuoteLatency', severity: 'P2', fingerprint: 'a' }], '2026-11-27T18:30:00Z'); // a Friday evening
    assert.deepEqual(
      await recordIncidentTimeline(db.pool, 'alertmanager', g, UTC).then((c) => c.map((x) => x.change)),
      ['opened']
    );
    // A second alert joins, then the first resolves: still one open incident.
    await deliver(
      g,
      [
        { alertname: 'QuoteLatency', severity: 'P2', fingerprint: 'a' },
        { alertname: 'QuoteErrors', severity: 'P1', fingerprint: 'b' },
      ],
      '2026-11-27T19:00:00Z'
    );
    await deliver(
      g,
      [{ alertname: 'QuoteLatency', severity: 'P2', fingerprint: 'a', status: 'resolved' }],
      '2026-11-27T19:30:00Z'
    );
    assert.deepEqual(await recordIncidentTimeline(db.pool, 'alertmanager', g, UTC), []);
    let [incident] = await incidents(g);
    assert.equal(incident.severity, 'P2', 'the severity it opened with');
    assert.deepEqual(incident.alertnames, ['QuoteLatency']);
    assert.equal(iso(incident.paged_at), '2026-11-27T18:30:00.000Z');
    assert.equal(
      iso(incident.ack_due_at),
      '2026-11-30T18:30:00.000Z',
      'Friday evening + 1 business day = Monday evening'
    );
    assert.equal(incident.resolved_at, null);
    // Every alert resolved: the resolve also acknowledges (nobody did first).
    await deliver(
      g,
      [{ alertname: 'QuoteErrors', severity: 'P1', fingerprint: 'b', status: 'resolved' }],
      '2026-11-28T09:00:00Z'
    );
    assert.deepEqual(
      await recordIncidentTimeline(db.pool, 'alertmanager', g, UTC).then((c) => c.map((x) => x.change)),
      ['resolved']
    );
    [incident] = await incidents(g);
    assert.deepEqual(
      [iso(incident.resolved_at), incident.resolved_via],
      ['2026-11-28T09:00:00.000Z', 'alert_resolved']
    );
    assert.deepEqual(
      [iso(incident.acknowledged_at), incident.acknowledged_via],
      ['2026-11-28T09:00:00.000Z', 'alert_resolved']
    );
    // A late duplicate resolve changes nothing; a new firing opens a second incident.
    await deliver(
      g,
      [
        { alertname: 'QuoteErrors', severity: 'P1', fingerprint: 'b', status: 'resolved' },
        { alertname: 'QuoteLatency', severity: 'P2', fingerprint: 'a', status: 'resolved' },
      ],
      '2026-11-28T09:05:00Z'
    );
    await deliver(
      g,
      [{ alertname: 'QuoteErrors', severity: 'P1', fingerprint: 'b', startsAt: '2026-11-30T08:00:00Z' }],
      '2026-11-30T08:00:30Z'
    );
    assert.deepEqual(
      await recordIncidentTimeline(db.pool, 'alertmanager', g, UTC).then((c) =>
        c.map((x) => `${x.change} ${x.severity}`)
      ),
      ['opened P1']
    );
    const all = await incidents(g);
    assert.equal(all.length, 2);
    assert.deepEqual(
      [iso(all[1].paged_at), iso(all[1].ack_due_at)],
      ['2026-11-30T08:00:30.000Z', '2026-11-30T12:00:30.000Z']
    );
    const linked = await db.pool.query(
      `SELECT incident_id, count(*)::int AS n FROM controlroom.alert_events WHERE group_key = $1 GROUP BY 1 ORDER BY 1 NULLS LAST`,
      [g]
    );
    assert.deepEqual(
      linked.rows.map((r) => r.n),
      [4, 1],
      'four changes in the first incident, one in the second (the redelivered resolves are no changes)'
    );
    const audits = await db.pool.query(`SELECT action FROM audit_log WHERE action LIKE 'incident.%' ORDER BY id`);
    assert.deepEqual(
      audits.rows.map((r) => r.action),
      ['incident.opened', 'incident.resolved', 'incident.opened']
    );
  });

  test('a notification opens at its most urgent severity; resolved before a page means no incident', async () => {
    await deliver(
      'g:both',
      [
        { alertname: 'A', severity: 'P3', fingerprint: 'a' },
        { alertname: 'B', severity: 'P1', fingerprint: 'b' },
      ],
      '2026-11-23T10:00:00Z'
    );
    await deliver(
      'g:quiet',
      [{ alertname: 'C', severity: 'P1', fingerprint: 'c', status: 'resolved' }],
      '2026-11-23T10:00:00Z'
    );
    await recordIncidentTimeline(db.pool, 'alertmanager', 'g:both', UTC);
    assert.deepEqual(await recordIncidentTimeline(db.pool, 'alertmanager', 'g:quiet', UTC), []);
    const rows = await incidents();
    assert.deepEqual(
      rows.map((r) => [r.group_key, r.severity, r.alertnames.join(',')]),
      [['g:both', 'P1', 'A,B']]
    );
  });

  test('exactly once: a retry, or two workers at once, record the change once', async () => {
    await deliver('g:race', [{ alertname: 'A', severity: 'P2', fingerprint: 'a' }], '2026-11-23T10:00:00Z');
    const results = await Promise.all(
      [1, 2, 3].map(() => recordIncidentTimeline(db.pool, 'alertmanager', 'g:race', UTC))
    );
    assert.equal(results.flat().length, 1, 'one opening among three concurrent runs');
    assert.deepEqual(
      await recordIncidentTimeline(db.pool, 'alertmanager', 'g:race', UTC),
      [],
      'a retry finds the change checked'
    );
    // Redelivered (same startsAt and status): the receiver stores no new change, so nothing moves.
    assert.equal(
      await deliver('g:race', [{ alertname: 'A', severity: 'P2', fingerprint: 'a' }], '2026-11-23T11:00:00Z'),
      0
    );
    assert.deepEqual(await recordIncidentTimeline(db.pool, 'alertmanager', 'g:race', UTC), []);
    assert.equal((await incidents('g:race')).length, 1);
  });

  test('a failure part-way leaves nothing half-written: the retry records the whole change', async () => {
    await deliver('g:fail', [{ alertname: 'A', severity: 'P3', fingerprint: 'a' }], '2026-11-23T10:00:00Z');
    // The time zone is only needed for the deadline, after the change was read: an unknown one fails there.
    await assert.rejects(
      recordIncidentTimeline(db.pool, 'alertmanager', 'g:fail', { timeZone: 'Not/AZone' }),
      /Not\/AZone/
    );
    assert.equal((await incidents('g:fail')).length, 0);
    const unchecked = await db.pool.query(
      `SELECT count(*)::int AS n FROM controlroom.alert_events WHERE group_key = 'g:fail' AND incident_checked_at IS NULL`
    );
    assert.equal(unchecked.rows[0].n, 1);
    await recordIncidentTimeline(db.pool, 'alertmanager', 'g:fail', { timeZone: 'America/New_York' });
    const [incident] = await incidents('g:fail');
    // Monday 05:00 EST + 3 business days = Thursday 05:00 EST.
    assert.equal(iso(incident.resolve_due_at), '2026-11-26T10:00:00.000Z');
  });

  test('Slack buttons: the first acknowledgement stands; Resolve closes and acknowledges when nobody did', async () => {
    for (const g of ['g:ack', 'g:res']) {
      await deliver(
        g,
        [{ alertname: 'A', severity: 'P1', fingerprint: g }],
        new Date(Date.now() - 60_000).toISOString()
      );
      await recordIncidentTimeline(db.pool, 'alertmanager', g, UTC);
    }
    const pages = await db.pool.query<{ id: string; group_key: string }>(
      `INSERT INTO controlroom.slack_pages (source, group_key, channel, severity) VALUES ('alertmanager', 'g:ack', '#p', 'P1'), ('alertmanager', 'g:res', '#p', 'P1') RETURNING id, group_key`
    );
    const pageOf = (g: string) => pages.rows.find((p) => p.group_key === g)!.id;
    assert.equal(
      await withTransaction(db.pool, 'READ COMMITTED', (c) => acknowledgeIncidentOfPage(c, pageOf('g:ack'), '@ana')),
      true
    );
    assert.equal(
      await withTransaction(db.pool, 'READ COMMITTED', (c) => acknowledgeIncidentOfPage(c, pageOf('g:ack'), '@bob')),
      false
    );
    assert.equal(
      await withTransaction(db.pool, 'READ COMMITTED', (c) => resolveIncidentOfPage(c, pageOf('g:res'), '@bob')),
      true
    );
    assert.equal(
      await withTransaction(db.pool, 'READ COMMITTED', (c) => resolveIncidentOfPage(c, pageOf('g:res'), '@ana')),
      false
    );
    const [acked] = await incidents('g:ack');
    assert.deepEqual(
      [acked.acknowledged_by, acked.acknowledged_via, acked.resolved_at],
      ['@ana', 'slack_button', null]
    );
    const [resolved] = await incidents('g:res');
    assert.deepEqual(
      [resolved.acknowledged_by, resolved.acknowledged_via, resolved.resolved_by, resolved.resolved_via],
      ['@bob', 'slack_resolve', '@bob', 'slack_resolve']
    );
    assert.equal(iso(resolved.acknowledged_at), iso(resolved.resolved_at));
    // The alert still fires after the person resolved: its resolve later changes nothing, a new firing opens anew.
    await deliver(
      'g:res',
      [{ alertname: 'A', severity: 'P1', fingerprint: 'g:res', status: 'resolved' }],
      new Date().toISOString()
    );
    assert.deepEqual(await recordIncidentTimeline(db.pool, 'alertmanager', 'g:res', UTC), []);
  });
});

describe('incident SLA metrics from the database', () => {
  /** An incident with known times (minutes after a Monday 00:00 UTC page unless given). */
  async function seed(
    severity: 'P1' | 'P2' | 'P3',
    paged: string,
    due: string,
    acked: string | null,
    resolved: string | null
  ) {
    const g = `seed:${Math.random()}`;
    await deliver(g, [{ alertname: 'Seeded', severity, fingerprint: g }], paged);
    await recordIncidentTimeline(db.pool, 'alertmanager', g, UTC);
    await db.pool.query(
      `UPDATE controlroom.incidents SET ack_due_at = $2, resolve_due_at = $2,
              acknowledged_at = $3, acknowledged_via = CASE WHEN $3::timestamptz IS NULL THEN NULL ELSE 'slack_button' END,
              resolved_at = $4, resolved_via = CASE WHEN $4::timestamptz IS NULL THEN NULL ELSE 'alert_resolved' END
        WHERE group_key = $1`,
      [g, due, acked, resolved]
    );
  }

  test('histograms, breaches, open and past-SLA gauges per severity, exact for known rows', async () => {
    const P1_DUE = '2026-11-23T04:00:00Z';
    await seed('P1', '2026-11-23T00:00:00Z', P1_DUE, '2026-11-23T00:10:00Z', '2026-11-23T02:00:00Z'); // met: 600 s, 7200 s
    await seed('P1', '2026-11-23T00:00:00Z', P1_DUE, '2026-11-23T04:00:00Z', '2026-11-23T05:00:00Z'); // at the deadline: both stages breached
    await seed('P1', '2026-11-23T00:00:00Z', P1_DUE, null, null); // open, unacknowledged
    await seed('P2', '2026-11-27T18:30:00Z', '2026-11-30T18:30:00Z', '2026-11-30T09:00:00Z', null); // acked Monday morning, open
    await seed('P3', '2026-11-23T00:00:00Z', '2026-11-26T00:00:00Z', '2026-11-23T01:00:00Z', '2026-11-23T01:00:00Z');
    const exporter = testExporter(db.pool);
    const refresh = async (now: string) => {
      await new IncidentsCollector({ pool: db.pool, metrics: exporter.metrics, settings: testSettings }).refresh(
        new Date(now)
      );
      return exporter.scrape();
    };
    const v = (m: Map<string, number>, name: string, labels: Record<string, string>) => m.get(seriesKey(name, labels));

    // Monday 03:00: nothing late yet.
    let m = await refresh('2026-11-23T03:00:00Z');
    assert.equal(
      v(m, 'controlroom_incidents_open', { severity: 'P1' }),
      2,
      'the one resolved at 05:00 is still open at 03:00'
    );
    assert.equal(v(m, 'controlroom_incidents_past_sla', { severity: 'P1' }), 0);

    // Monday 06:00: the unacknowledged P1 is past its 4 h.
    m = await refresh('2026-11-23T06:00:00Z');
    const tta = 'controlroom_incident_time_to_acknowledge_seconds';
    const ttr = 'controlroom_incident_time_to_resolve_seconds';
    assert.equal(v(m, `${tta}_bucket`, { severity: 'P1', le: '900' }), 1);
    assert.equal(
      v(m, `${tta}_bucket`, { severity: 'P1', le: '14400' }),
      2,
      'le is inclusive: exactly 4 h is in the 4 h bucket'
    );
    assert.equal(v(m, `${tta}_count`, { severity: 'P1' }), 2);
    assert.equal(v(m, `${tta}_sum`, { severity: 'P1' }), 600 + 14400);
    assert.equal(v(m, `${ttr}_bucket`, { severity: 'P1', le: '7200' }), 1);
    assert.equal(v(m, `${ttr}_bucket`, { severity: 'P1', le: '28800' }), 2);
    assert.equal(v(m, `${ttr}_bucket`, { severity: 'P1', le: '+Inf' }), 2);
    assert.equal(v(m, `${ttr}_sum`, { severity: 'P1' }), 7200 + 18000);
    // "< 4 h": acknowledged at exactly 4 h is a breach; the open one is counted once its deadline passed.
    assert.equal(v(m, 'controlroom_incident_sla_breaches_total', { severity: 'P1', stage: 'acknowledge' }), 2);
    assert.equal(v(m, 'controlroom_incident_sla_breaches_total', { severity: 'P1', stage: 'resolve' }), 2);
    assert.equal(v(m, 'controlroom_incidents_open', { severity: 'P1' }), 1);
    assert.equal(v(m, 'controlroom_incidents_past_sla', { severity: 'P1' }), 1);
    assert.equal(v(m, `${tta}_count`, { severity: 'P3' }), 1);
    assert.equal(v(m, `${ttr}_bucket`, { severity: 'P3', le: '3600' }), 1);
    assert.equal(v(m, 'controlroom_incident_sla_breaches_total', { severity: 'P3', stage: 'resolve' }), 0);

    // Saturday: the Friday-evening P2 is not due before Monday 18:30; Monday 19:00 it is past (acknowledged, unresolved).
    m = await refresh('2026-11-28T12:00:00Z');
    assert.deepEqual(
      [
        v(m, 'controlroom_incidents_open', { severity: 'P2' }),
        v(m, 'controlroom_incidents_past_sla', { severity: 'P2' }),
      ],
      [1, 0]
    );
    m = await refresh('2026-11-30T19:00:00Z');
    assert.deepEqual(
      [
        v(m, 'controlroom_incidents_open', { severity: 'P2' }),
        v(m, 'controlroom_incidents_past_sla', { severity: 'P2' }),
      ],
      [1, 1]
    );
    assert.equal(
      v(m, 'controlroom_incident_sla_breaches_total', { severity: 'P2', stage: 'acknowledge' }),
      0,
      'acknowledged Monday 09:00, in time'
    );
    assert.equal(v(m, 'controlroom_incident_sla_breaches_total', { severity: 'P2', stage: 'resolve' }), 1);
    // Every severity has its series, zero when nothing happened.
    assert.equal(v(m, 'controlroom_incidents_open', { severity: 'P3' }), 0);
    assert.equal(v(m, `${tta}_count`, { severity: 'P2' }), 1);
  });
});
