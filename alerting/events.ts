import type { Pool, PoolClient } from '../core/db.ts';

/** Who sent an alert notification. */
export type AlertSource = 'alertmanager' | 'grafana';

/** One state change of one alert (controlroom.alert_events): what receiver/ stores and slack/ and freeze/ act on. */
export interface AlertEventRow {
  id: string;
  source: string;
  group_key: string;
  fingerprint: string;
  status: 'firing' | 'resolved';
  starts_at: Date;
  alertname: string;
  severity: string | null;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  generator_url: string | null;
  /** When a Slack message (the root or a thread reply) showed this change; null while not yet shown. */
  reported_at: Date | null;
}

const COLUMNS = `id, source, group_key, fingerprint, status, starts_at, alertname, severity, labels, annotations, generator_url, reported_at`;

/** State changes of a group not acted on yet, oldest first. */
export async function pendingEvents(pool: Pool, source: string, groupKey: string): Promise<AlertEventRow[]> {
  const { rows } = await pool.query<AlertEventRow>(
    `SELECT ${COLUMNS} FROM controlroom.alert_events
      WHERE source = $1 AND group_key = $2 AND processed_at IS NULL ORDER BY id`,
    [source, groupKey]
  );
  return rows;
}

/** The latest known state of every alert (fingerprint) in a group. */
export async function groupState(pool: Pool, source: string, groupKey: string): Promise<AlertEventRow[]> {
  const { rows } = await pool.query<AlertEventRow>(
    `SELECT DISTINCT ON (fingerprint) ${COLUMNS} FROM controlroom.alert_events
      WHERE source = $1 AND group_key = $2 ORDER BY fingerprint, id DESC`,
    [source, groupKey]
  );
  return rows.sort((a, b) => a.alertname.localeCompare(b.alertname) || a.fingerprint.localeCompare(b.fingerprint));
}

/** Records that a Slack message showing these changes was posted, so a retried job does not show them again. */
export async function markReported(db: Pool | PoolClient, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query(
    `UPDATE controlroom.alert_events SET reported_at = now() WHERE id = ANY($1::bigint[]) AND reported_at IS NULL`,
    [ids]
  );
}

export async function markProcessed(pool: Pool, ids: readonly string[]): Promise<void> {
  await pool.query(`UPDATE controlroom.alert_events SET processed_at = now() WHERE id = ANY($1::bigint[])`, [ids]);
}

const SEVERITY_ORDER = ['P1', 'P2', 'P3'];

/** The most urgent severity among the alerts (unknown or missing counts as P3). */
export function groupSeverity(alerts: readonly Pick<AlertEventRow, 'severity'>[]): 'P1' | 'P2' | 'P3' {
  let best = 2;
  for (const a of alerts) {
    const rank = SEVERITY_ORDER.indexOf(a.severity ?? '');
    if (rank >= 0 && rank < best) best = rank;
  }
  return SEVERITY_ORDER[best] as 'P1' | 'P2' | 'P3';
}
