import type { Pool } from '../../core/db.ts';
import { planValue } from '../../core/plan-targets.ts';
import type { AlertEventRow } from '../events.ts';

/** The alert that says the active (traffic-taking) region fails its health checks (operational.rules.yml). */
export const ACTIVE_REGION_DOWN = 'ActiveRegionDown';

/**
 * Alerts that freeze releases: the error budget half spent, the plan's release gate (generated with
 * `gate: release`: agent success of the last hour below the gate, or unreadable), the active region down
 * (no deploy while the TMS runs degraded), or any P1 page of an SLO.
 */
export const freezesReleases = (e: Pick<AlertEventRow, 'alertname' | 'severity' | 'labels'>) =>
  e.alertname === 'ErrorBudgetHalfSpent' ||
  e.labels.gate === 'release' ||
  (e.alertname === ACTIVE_REGION_DOWN && planValue('release_gate_active_region_down') === 1) ||
  (e.severity === 'P1' && Boolean(e.labels.slo));

/** Records freeze-relevant state changes; returns whether any was recorded (the freeze must be re-decided). */
export async function recordFreezeTriggers(pool: Pool, events: readonly AlertEventRow[]): Promise<boolean> {
  const relevant = events.filter(freezesReleases);
  for (const e of relevant) {
    await pool.query(
      `INSERT INTO controlroom.freeze_triggers (source, fingerprint, alertname, slo, severity, firing, started_at, resolved_at, labels)
       VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $6 THEN NULL ELSE now() END, $8)
       ON CONFLICT (source, fingerprint) DO UPDATE
         SET firing = EXCLUDED.firing, started_at = EXCLUDED.started_at, resolved_at = EXCLUDED.resolved_at,
             severity = EXCLUDED.severity, labels = EXCLUDED.labels, updated_at = now()
       -- An older notification arriving late must not undo a newer state.
       WHERE controlroom.freeze_triggers.started_at <= EXCLUDED.started_at`,
      [
        e.source,
        e.fingerprint,
        e.alertname,
        e.labels.slo ?? null,
        e.severity,
        e.status === 'firing',
        e.starts_at,
        JSON.stringify(e.labels),
      ]
    );
  }
  return relevant.length > 0;
}
