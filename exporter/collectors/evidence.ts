import type { CollectorContext } from './context.ts';
import type { Collector } from '../runner.ts';
import { parseSchedule, previousSlot } from '../../evidence/schedule.ts';

/**
 * The weekly evidence schedule as Prometheus sees it. `controlroom_evidence_overdue_seconds` is the time
 * since the latest slot (at or after the schedule was first switched on) that has no verified bundle: 0
 * while the week is covered, growing once a week was missed or failed. The EvidenceBundleMissed and
 * EvidenceBundleFailed rules alert on it and on the latest attempt failing.
 */
export class EvidenceCollector implements Collector {
  readonly name = 'evidence';
  readonly intervalMs: number;

  constructor(private readonly ctx: CollectorContext) {
    this.intervalMs = ctx.settings.EXPORTER_SLOW_REFRESH_MS;
  }

  async refresh(now = new Date()): Promise<void> {
    const { metrics, settings, pool } = this.ctx;
    const schedule = settings.EVIDENCE_DIR ? parseSchedule(settings.EVIDENCE_SCHEDULE) : null;
    const [counts, latest, success, enabled] = await Promise.all([
      pool.query<{ status: string; n: number }>(
        `SELECT status, count(*)::int AS n FROM controlroom.evidence_bundles GROUP BY status`
      ),
      pool.query<{ status: string }>(
        `SELECT status FROM controlroom.evidence_bundles WHERE status <> 'pruned' ORDER BY started_at DESC, id DESC LIMIT 1`
      ),
      pool.query<{ at: number | null }>(
        `SELECT extract(epoch FROM max(finished_at))::float8 AS at FROM controlroom.evidence_bundles WHERE status = 'verified'`
      ),
      pool.query<{ enabled_since: Date }>(`SELECT enabled_since FROM controlroom.evidence_schedule WHERE id = 1`),
    ]);
    metrics.evidenceScheduleEnabled.replace([{ labels: {}, value: schedule ? 1 : 0 }]);
    metrics.evidenceBundles.replace(
      ['verified', 'failed', 'running', 'pruned'].map((status) => ({
        labels: { status },
        value: counts.rows.find((r) => r.status === status)?.n ?? 0,
      }))
    );
    metrics.evidenceLastRunFailed.replace([{ labels: {}, value: latest.rows[0]?.status === 'failed' ? 1 : 0 }]);
    const at = success.rows[0]?.at ?? null;
    metrics.evidenceLastSuccess.replace(at === null ? [] : [{ labels: {}, value: at }]);
    const since = enabled.rows[0]?.enabled_since ?? null;
    if (!schedule || !since) {
      metrics.evidenceOverdue.replace([]);
      return;
    }
    const due = previousSlot(schedule, now);
    let overdue = 0;
    if (due.getTime() >= since.getTime()) {
      const covered = await pool.query(
        `SELECT 1 FROM controlroom.evidence_bundles WHERE slot >= $1 AND status IN ('verified', 'pruned') LIMIT 1`,
        [due]
      );
      if (covered.rowCount === 0) overdue = (now.getTime() - due.getTime()) / 1000;
    }
    metrics.evidenceOverdue.replace([{ labels: {}, value: overdue }]);
  }
}
