import type { Pool } from '../../core/db.ts';
import type { IncidentColumns } from './columns.ts';

/** One incident as the evidence bundle records it (records/incidents.jsonl), as it stood at the period's end. */
export interface IncidentRecord {
  id: string;
  source: string;
  group_key: string;
  severity: 'P1' | 'P2' | 'P3';
  alertnames: string[];
  paged_at: string;
  acknowledge_by: string;
  resolve_by: string;
  sla_time_zone: string;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
  acknowledged_via: string | null;
  resolved_at: string | null;
  resolved_by: string | null;
  resolved_via: string | null;
  /** acknowledged, resolved or open at the period's end. */
  state_at_period_end: 'open' | 'acknowledged' | 'resolved';
  /** Stages whose deadline passed without it by the period's end (an acknowledgement at or after the deadline too). */
  breaches: Array<'acknowledge' | 'resolve'>;
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

/**
 * The incidents active in [from, to): paged before the end and not resolved before the start. Each is shown
 * as it stood at `to` (an acknowledgement or resolution after the period is left out, and breaches are
 * judged at `to`), so the bundle of a past period is the same whenever it is exported.
 */
export async function incidentsForPeriod(pool: Pool, from: Date, to: Date): Promise<IncidentRecord[]> {
  const { rows } = await pool.query<IncidentColumns>(
    `SELECT id, source, group_key, severity, alertnames, paged_at, ack_due_at, resolve_due_at, sla_time_zone,
            CASE WHEN acknowledged_at < $2 THEN acknowledged_at END AS acknowledged_at,
            CASE WHEN acknowledged_at < $2 THEN acknowledged_by END AS acknowledged_by,
            CASE WHEN acknowledged_at < $2 THEN acknowledged_via END AS acknowledged_via,
            CASE WHEN resolved_at < $2 THEN resolved_at END AS resolved_at,
            CASE WHEN resolved_at < $2 THEN resolved_by END AS resolved_by,
            CASE WHEN resolved_at < $2 THEN resolved_via END AS resolved_via
       FROM controlroom.incidents
      WHERE paged_at < $2 AND (resolved_at IS NULL OR resolved_at >= $1)
      ORDER BY paged_at, id`,
    [from, to]
  );
  return rows.map((r) => {
    const breaches: IncidentRecord['breaches'] = [];
    if ((r.acknowledged_at ?? to).getTime() >= r.ack_due_at.getTime()) breaches.push('acknowledge');
    if ((r.resolved_at ?? to).getTime() >= r.resolve_due_at.getTime()) breaches.push('resolve');
    return {
      id: String(r.id),
      source: r.source,
      group_key: r.group_key,
      severity: r.severity,
      alertnames: r.alertnames,
      paged_at: iso(r.paged_at)!,
      acknowledge_by: iso(r.ack_due_at)!,
      resolve_by: iso(r.resolve_due_at)!,
      sla_time_zone: r.sla_time_zone,
      acknowledged_at: iso(r.acknowledged_at),
      acknowledged_by: r.acknowledged_by,
      acknowledged_via: r.acknowledged_via,
      resolved_at: iso(r.resolved_at),
      resolved_by: r.resolved_by,
      resolved_via: r.resolved_via,
      state_at_period_end: r.resolved_at ? 'resolved' : r.acknowledged_at ? 'acknowledged' : 'open',
      breaches,
    };
  });
}
