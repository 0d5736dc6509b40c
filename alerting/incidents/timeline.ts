import { audit } from '../../core/audit.ts';
import { withTransaction, type Pool } from '../../core/db.ts';
import { groupSeverity } from '../events.ts';
import { slaDeadlines } from './sla.ts';

export interface IncidentSettings {
  /** INCIDENT_SLA_TIME_ZONE: whose Monday–Friday count as business days. */
  timeZone: string;
}

export interface IncidentChange {
  incidentId: string;
  change: 'opened' | 'resolved';
  severity: string;
}

interface UncheckedEvent {
  id: string;
  notification_id: string;
  fingerprint: string;
  status: 'firing' | 'resolved';
  alertname: string;
  severity: string | null;
  received_at: Date;
}

const ACTOR = 'controlroom:receiver';

/**
 * Keeps the incident timeline of one alert group: an incident opens at the first notification that brings
 * a firing alert while the group has no open incident (paged_at = when that notification reached Control
 * Room, so a Slack outage delaying the post does not move the SLA clock), and resolves at the notification
 * after which no alert of the group fires (an Alertmanager resolve also acknowledges an incident nobody
 * acknowledged first). A Slack Acknowledge or Resolve press is recorded by acknowledgeIncidentOfPage /
 * resolveIncidentOfPage in the press's own transaction.
 *
 * Exactly once, across retries, restarts and concurrent instances: the state changes are read and marked
 * `incident_checked_at` in the same transaction that opens or closes incidents, under a per-group advisory
 * lock; an incident is keyed by the state change that opened it (unique), and a group has at most one open
 * incident (partial unique index). A retried job finds its changes checked and does nothing; all times are
 * read from stored rows, never from the retry's clock.
 *
 * A notification is applied as a whole (Alertmanager sends the group's alerts together), so the severity
 * an incident opens with is the most urgent among all alerts firing after it; the severity and the deadlines
 * are then fixed for the incident's life, as the Slack page's channel is.
 */
export async function recordIncidentTimeline(
  pool: Pool,
  source: string,
  groupKey: string,
  settings: IncidentSettings
): Promise<IncidentChange[]> {
  return withTransaction(pool, 'READ COMMITTED', async (client) => {
    await client.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`incident:${source}:${groupKey}`]);
    const { rows: unchecked } = await client.query<UncheckedEvent>(
      `SELECT id, notification_id, fingerprint, status, alertname, severity, received_at FROM controlroom.alert_events
        WHERE source = $1 AND group_key = $2 AND incident_checked_at IS NULL ORDER BY id`,
      [source, groupKey]
    );
    if (unchecked.length === 0) return [];
    // The group's state before these changes, as the changes already checked left it.
    const { rows: before } = await client.query<
      Pick<UncheckedEvent, 'fingerprint' | 'status' | 'alertname' | 'severity'>
    >(
      `SELECT DISTINCT ON (fingerprint) fingerprint, status, alertname, severity FROM controlroom.alert_events
        WHERE source = $1 AND group_key = $2 AND incident_checked_at IS NOT NULL ORDER BY fingerprint, id DESC`,
      [source, groupKey]
    );
    const state = new Map(before.map((e) => [e.fingerprint, e]));
    const { rows: openRows } = await client.query<{ id: string }>(
      `SELECT id FROM controlroom.incidents WHERE source = $1 AND group_key = $2 AND resolved_at IS NULL FOR UPDATE`,
      [source, groupKey]
    );
    let openId: string | null = openRows[0]?.id ?? null;
    const changes: IncidentChange[] = [];

    const notifications = new Map<string, UncheckedEvent[]>();
    for (const e of unchecked)
      notifications.set(e.notification_id, [...(notifications.get(e.notification_id) ?? []), e]);
    for (const events of notifications.values()) {
      for (const e of events) state.set(e.fingerprint, e);
      const firing = [...state.values()].filter((e) => e.status === 'firing');
      const firstFiring = events.find((e) => e.status === 'firing');
      if (!openId && firstFiring && firing.length > 0) {
        const severity = groupSeverity(firing);
        const pagedAt = new Date(firstFiring.received_at);
        const due = slaDeadlines(severity, pagedAt, settings.timeZone);
        const alertnames = [...new Set(firing.map((e) => e.alertname))].sort();
        const { rows } = await client.query<{ id: string }>(
          `INSERT INTO controlroom.incidents (source, group_key, severity, alertnames, opened_by_event, paged_at, ack_due_at, resolve_due_at, sla_time_zone)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
          [
            source,
            groupKey,
            severity,
            alertnames,
            firstFiring.id,
            pagedAt,
            due.acknowledgeBy,
            due.resolveBy,
            settings.timeZone,
          ]
        );
        openId = rows[0]!.id;
        changes.push({ incidentId: openId, change: 'opened', severity });
        await audit(client, {
          actor: ACTOR,
          action: 'incident.opened',
          target: `incidents/${openId}`,
          payload: {
            source,
            group_key: groupKey,
            severity,
            alertnames,
            paged_at: pagedAt.toISOString(),
            due_at: due.resolveBy.toISOString(),
            time_zone: settings.timeZone,
          },
        });
      }
      if (openId) {
        await client.query(`UPDATE controlroom.alert_events SET incident_id = $2 WHERE id = ANY($1::bigint[])`, [
          events.map((e) => e.id),
          openId,
        ]);
      }
      if (openId && firing.length === 0) {
        const resolvedAt = new Date(events[events.length - 1]!.received_at);
        const { rows } = await client.query<{ severity: string; acknowledged_via: string }>(
          `UPDATE controlroom.incidents
              SET resolved_at = greatest($2::timestamptz, paged_at), resolved_via = 'alert_resolved',
                  acknowledged_at = coalesce(acknowledged_at, greatest($2::timestamptz, paged_at)),
                  acknowledged_via = coalesce(acknowledged_via, 'alert_resolved')
            WHERE id = $1 RETURNING severity, acknowledged_via`,
          [openId, resolvedAt]
        );
        changes.push({ incidentId: openId, change: 'resolved', severity: rows[0]!.severity });
        await audit(client, {
          actor: ACTOR,
          action: 'incident.resolved',
          target: `incidents/${openId}`,
          payload: {
            source,
            group_key: groupKey,
            resolved_at: resolvedAt.toISOString(),
            via: 'alert_resolved',
            acknowledged_via: rows[0]!.acknowledged_via,
          },
        });
        openId = null;
      }
    }
    await client.query(`UPDATE controlroom.alert_events SET incident_checked_at = now() WHERE id = ANY($1::bigint[])`, [
      unchecked.map((e) => e.id),
    ]);
    return changes;
  });
}

// The Slack buttons' records (acknowledged, resolved) are shared with slack/: they live a level up.
export { acknowledgeIncidentOfPage, resolveIncidentOfPage } from '../incident-buttons.ts';
