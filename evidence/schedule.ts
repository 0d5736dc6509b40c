/**
 * Evidence on a schedule: a self-rescheduling graphile-worker job writes last week's signed bundle to
 * EVIDENCE_DIR at EVIDENCE_SCHEDULE (default Monday 02:00 UTC), verifies it from disk, records it in
 * controlroom.evidence_bundles, and prunes bundles older than EVIDENCE_RETENTION_DAYS (audited).
 *
 * Guarantees and failure modes:
 * - One bundle per slot: the slot is unique in the table. A job retried after a crash finds its own row;
 *   a verified slot is never written again, and a half-written directory of a failed or interrupted run
 *   is removed before the export starts over (the export refuses a non-empty directory).
 * - The next slot is queued (by job key) before the export runs, so a failing export never stops the
 *   schedule; a failed export throws and the queue retries it with backoff.
 * - At start the most recent slot since the schedule was switched on is caught up if it has no verified
 *   bundle (the service was down at the time); otherwise the next slot is queued.
 * - A missed or failed week shows in controlroom_evidence_overdue_seconds and
 *   controlroom_evidence_last_run_failed (exporter/collectors/evidence.ts), which the Evidence* rules alert on.
 * - The optional S3 upload is not implemented: no S3 client is installed in this project.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { TaskList } from 'graphile-worker';
import { audit } from '../core/audit.ts';
import type { Pool } from '../core/db.ts';
import { enqueueJob } from '../core/jobs.ts';
import type { Logger } from '../core/logger.ts';
import { exportEvidence } from './export.ts';
import { MANIFEST_FILE, sha256 } from './manifest.ts';
import { describeVerification, verifyEvidence } from './verify.ts';

export const EVIDENCE_WEEKLY_TASK = 'evidence_weekly';

declare global {
  namespace GraphileWorker {
    interface Tasks {
      /** Write the bundle of the week before `slot` (an ISO instant); queues the next slot first. */
      evidence_weekly: { slot: string };
    }
  }
}
const ACTOR = 'controlroom:evidence';
const WEEK_MS = 7 * 86_400_000;
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

export interface WeeklySchedule {
  /** 0 = Sunday … 6 = Saturday (UTC). */
  weekday: number;
  hour: number;
  minute: number;
  text: string;
}

/** "Mon 02:00" (any case, "Monday" too) → the weekday and UTC time; "off" → null. */
export function parseSchedule(text: string): WeeklySchedule | null {
  const t = text.trim();
  if (/^off$/i.test(t)) return null;
  const m = /^([a-z]{3})[a-z]* (\d{2}):(\d{2})$/i.exec(t);
  const weekday = m ? DAYS.indexOf(m[1]!.toLowerCase()) : -1;
  if (!m || weekday < 0 || Number(m[2]) > 23 || Number(m[3]) > 59) {
    throw new Error(
      `invalid configuration: EVIDENCE_SCHEDULE "${text}": a weekday and a UTC time such as "Mon 02:00", or "off"`
    );
  }
  return { weekday, hour: Number(m[2]), minute: Number(m[3]), text: t };
}

/** The most recent slot at or before `now`. */
export function previousSlot(schedule: WeeklySchedule, now: Date): Date {
  const d = new Date(
    Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), schedule.hour, schedule.minute)
  );
  d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() - schedule.weekday + 7) % 7));
  if (d.getTime() > now.getTime()) d.setUTCDate(d.getUTCDate() - 7);
  return d;
}

/** The first slot strictly after `now`. */
export const nextSlot = (schedule: WeeklySchedule, now: Date): Date =>
  new Date(previousSlot(schedule, now).getTime() + WEEK_MS);

/** A bundle covers the week before its slot: [slot − 7 d, slot). Its directory is named after the slot. */
export const bundlePeriod = (slot: Date) => ({ from: new Date(slot.getTime() - WEEK_MS), to: slot });
export const bundleDirName = (slot: Date) =>
  `evidence-${slot
    .toISOString()
    .replace(/:/g, '')
    .replace(/\.\d{3}Z$/, 'Z')}`;

export interface ScheduledEvidenceSettings {
  dir: string;
  schedule: WeeklySchedule;
  retentionDays: number;
  dashboards: string[];
  dashboardsDir: string;
  prometheusUrl: string | undefined;
  signingKey: string | undefined;
}

export interface BundleRow {
  id: string;
  slot: Date;
  period_from: Date;
  period_to: Date;
  dir: string;
  status: 'running' | 'verified' | 'failed' | 'pruned';
  attempts: number;
  files: number | null;
  manifest_sha256: string | null;
  error: string | null;
  started_at: Date;
  finished_at: Date | null;
  pruned_at: Date | null;
}

const BUNDLE_COLUMNS = `id::text AS id, slot, period_from, period_to, dir, status, attempts, files, manifest_sha256, error, started_at, finished_at, pruned_at`;

export async function listBundles(pool: Pool, limit = 100): Promise<BundleRow[]> {
  const { rows } = await pool.query<BundleRow>(
    `SELECT ${BUNDLE_COLUMNS} FROM controlroom.evidence_bundles ORDER BY slot DESC LIMIT $1`,
    [limit]
  );
  return rows;
}

/** Records when the schedule was switched on (first start with it on), and queues the due or next slot. */
export async function scheduleEvidence(
  pool: Pool,
  settings: ScheduledEvidenceSettings,
  now = new Date()
): Promise<Date> {
  const { rows } = await pool.query<{ enabled_since: Date }>(
    `INSERT INTO controlroom.evidence_schedule (id, schedule) VALUES (1, $1)
     ON CONFLICT (id) DO UPDATE SET schedule = EXCLUDED.schedule, updated_at = now()
     RETURNING enabled_since`,
    [settings.schedule.text]
  );
  const due = previousSlot(settings.schedule, now);
  const done = await pool.query(
    `SELECT 1 FROM controlroom.evidence_bundles WHERE slot = $1 AND status IN ('verified', 'pruned')`,
    [due]
  );
  const catchUp = due.getTime() >= rows[0]!.enabled_since.getTime() && done.rowCount === 0;
  const slot = catchUp ? due : nextSlot(settings.schedule, now);
  await queueSlot(pool, slot);
  return slot;
}

const queueSlot = (pool: Pool, slot: Date) =>
  enqueueJob(
    pool,
    EVIDENCE_WEEKLY_TASK,
    { slot: slot.toISOString() },
    // One named queue: bundles are written one at a time across every instance. The job key alone does
    // not stop two at once: the other instance starting while a bundle is written queues the slot again
    // (it is not verified yet), and runScheduledEvidence re-claims a 'running' slot (a crashed attempt).
    { jobKey: EVIDENCE_WEEKLY_TASK, runAt: slot, maxAttempts: 5, queueName: EVIDENCE_WEEKLY_TASK }
  );

/**
 * Writes, verifies and records the bundle of one slot, then prunes. Throws when the bundle could not be
 * written or did not verify (the row says why, the queue retries).
 */
export async function runScheduledEvidence(
  pool: Pool,
  settings: ScheduledEvidenceSettings,
  slot: Date,
  logger: Logger
): Promise<BundleRow> {
  const { from, to } = bundlePeriod(slot);
  const dir = path.resolve(settings.dir, bundleDirName(slot));
  const claimed = await pool.query<BundleRow>(
    `INSERT INTO controlroom.evidence_bundles (slot, period_from, period_to, dir) VALUES ($1, $2, $3, $4)
     ON CONFLICT (slot) DO UPDATE SET status = 'running', attempts = evidence_bundles.attempts + 1, error = NULL,
                                      started_at = now(), finished_at = NULL
       WHERE evidence_bundles.status IN ('running', 'failed')
     RETURNING ${BUNDLE_COLUMNS}`,
    [slot, from, to, dir]
  );
  if (claimed.rowCount === 0) {
    // Already verified (or pruned): a repeated job does nothing more.
    const existing = await pool.query<BundleRow>(
      `SELECT ${BUNDLE_COLUMNS} FROM controlroom.evidence_bundles WHERE slot = $1`,
      [slot]
    );
    return existing.rows[0]!;
  }
  const row = claimed.rows[0]!;
  try {
    if (!settings.prometheusUrl) throw new Error('PROMETHEUS_URL is not set: the dashboard snapshots need Prometheus');
    // Whatever an interrupted or failed attempt left in this slot's directory is ours to remove.
    await fs.rm(dir, { recursive: true, force: true });
    const result = await exportEvidence({
      pool,
      prometheusUrl: settings.prometheusUrl,
      dashboardsDir: settings.dashboardsDir,
      dashboards: settings.dashboards,
      from,
      to,
      outDir: dir,
      signingKey: settings.signingKey,
    });
    const verification = await verifyEvidence(dir, settings.signingKey);
    if (!verification.ok)
      throw new Error(`the bundle did not verify after writing: ${describeVerification(verification).join('; ')}`);
    const manifest = sha256(await fs.readFile(path.join(dir, MANIFEST_FILE)));
    const { rows } = await pool.query<BundleRow>(
      `UPDATE controlroom.evidence_bundles SET status = 'verified', files = $2, manifest_sha256 = $3, finished_at = now()
        WHERE id = $1 RETURNING ${BUNDLE_COLUMNS}`,
      [row.id, result.files.length, manifest]
    );
    await audit(pool, {
      actor: ACTOR,
      action: 'evidence.bundle_verified',
      target: `evidence_bundles/${row.id}`,
      payload: {
        slot: slot.toISOString(),
        from: from.toISOString(),
        to: to.toISOString(),
        dir,
        files: result.files.length,
        manifest_sha256: manifest,
        empty_targets: result.emptyTargets.length,
      },
    });
    logger.info({ slot, dir, files: result.files.length }, 'weekly evidence bundle written and verified');
    return rows[0]!;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    await pool.query(
      `UPDATE controlroom.evidence_bundles SET status = 'failed', error = $2, finished_at = now() WHERE id = $1`,
      [row.id, message]
    );
    await audit(pool, {
      actor: ACTOR,
      action: 'evidence.bundle_failed',
      target: `evidence_bundles/${row.id}`,
      payload: { slot: slot.toISOString(), dir, error: message, attempt: row.attempts },
    });
    logger.error({ slot, dir, err: message }, 'weekly evidence bundle failed');
    throw error;
  }
}

/**
 * Deletes the bundles whose period ended more than the retention ago: the directory first, then the row
 * is marked pruned and audited. A directory already gone counts as deleted; one that cannot be deleted
 * stays listed as it was (and is tried again next week).
 */
export async function pruneEvidence(
  pool: Pool,
  retentionDays: number,
  logger: Logger,
  now = new Date()
): Promise<BundleRow[]> {
  const cutoff = new Date(now.getTime() - retentionDays * 86_400_000);
  const { rows } = await pool.query<BundleRow>(
    `SELECT ${BUNDLE_COLUMNS} FROM controlroom.evidence_bundles WHERE status IN ('verified', 'failed') AND period_to < $1 ORDER BY slot`,
    [cutoff]
  );
  const pruned: BundleRow[] = [];
  for (const bundle of rows) {
    try {
      await fs.rm(bundle.dir, { recursive: true, force: true });
    } catch (error) {
      logger.warn({ dir: bundle.dir, err: error }, 'could not delete an evidence bundle past its retention');
      continue;
    }
    const updated = await pool.query<BundleRow>(
      `UPDATE controlroom.evidence_bundles SET status = 'pruned', pruned_at = now() WHERE id = $1 AND status IN ('verified', 'failed') RETURNING ${BUNDLE_COLUMNS}`,
      [bundle.id]
    );
    if (updated.rowCount !== 1) continue;
    await audit(pool, {
      actor: ACTOR,
      action: 'evidence.bundle_pruned',
      target: `evidence_bundles/${bundle.id}`,
      payload: {
        slot: bundle.slot.toISOString(),
        period_to: bundle.period_to.toISOString(),
        dir: bundle.dir,
        was: bundle.status,
        retention_days: retentionDays,
      },
    });
    pruned.push(updated.rows[0]!);
  }
  if (pruned.length > 0)
    logger.info(
      { pruned: pruned.length, retention_days: retentionDays },
      'evidence bundles past their retention deleted'
    );
  return pruned;
}

/** The queue task: queue the next slot first, then prune, then write this slot's bundle. */
export function evidenceTasks(pool: Pool, settings: ScheduledEvidenceSettings, logger: Logger): TaskList {
  return {
    [EVIDENCE_WEEKLY_TASK]: async (payload) => {
      // Declared as an ISO instant; a hand-queued job could still carry anything, and fails here.
      const slot = new Date(String(payload.slot));
      if (Number.isNaN(slot.getTime()))
        throw new Error(`${EVIDENCE_WEEKLY_TASK}: payload has no valid slot: ${JSON.stringify(payload)}`);
      const next = nextSlot(settings.schedule, new Date(Math.max(Date.now(), slot.getTime())));
      await queueSlot(pool, next);
      await pruneEvidence(pool, settings.retentionDays, logger);
      await runScheduledEvidence(pool, settings, slot, logger);
    },
  };
}

/** The scheduled export's settings from the configuration; null when it is off (no EVIDENCE_DIR, or "off"). */
export function scheduledEvidenceSettings(
  config: {
    EVIDENCE_DIR?: string | undefined;
    EVIDENCE_SCHEDULE: string;
    EVIDENCE_RETENTION_DAYS: number;
    EVIDENCE_DASHBOARDS: string;
    PROMETHEUS_URL?: string | undefined;
    EVIDENCE_SIGNING_KEY?: string | undefined;
  },
  dashboardsDir: string
): ScheduledEvidenceSettings | null {
  const schedule = parseSchedule(config.EVIDENCE_SCHEDULE);
  if (!schedule || !config.EVIDENCE_DIR) return null;
  return {
    dir: path.resolve(config.EVIDENCE_DIR),
    schedule,
    retentionDays: config.EVIDENCE_RETENTION_DAYS,
    dashboards: config.EVIDENCE_DASHBOARDS.split(','),
    dashboardsDir,
    prometheusUrl: config.PROMETHEUS_URL,
    signingKey: config.EVIDENCE_SIGNING_KEY,
  };
}
