import type { EvidenceBundle, EvidenceList } from '@controlroom/contract';
import express, { type Router } from 'express';
import { requireAction } from '../core/access.ts';
import type { Pool } from '../core/db.ts';
import { UserError } from '../core/errors.ts';
import { listBundles, nextSlot, parseSchedule, type BundleRow } from './schedule.ts';

const iso = (d: Date | null) => d?.toISOString() ?? null;
const bundleView = (b: BundleRow): EvidenceBundle => ({
  id: b.id,
  slot: b.slot.toISOString(),
  periodFrom: b.period_from.toISOString(),
  periodTo: b.period_to.toISOString(),
  dir: b.dir,
  status: b.status,
  attempts: b.attempts,
  files: b.files,
  manifestSha256: b.manifest_sha256,
  error: b.error,
  startedAt: b.started_at.toISOString(),
  finishedAt: iso(b.finished_at),
  prunedAt: iso(b.pruned_at),
});

export interface EvidenceRouteSettings {
  dir: string | undefined;
  schedule: string;
  retentionDays: number;
}

/** Mounted under /api: GET /evidence[?limit=N] lists the scheduled bundles, newest first (Viewer). */
export function evidenceApiRouter(pool: Pool, settings: EvidenceRouteSettings): Router {
  const router = express.Router();
  router.get('/evidence', requireAction('read'), async (req, res) => {
    const raw = req.query.limit === undefined ? 100 : Number(req.query.limit);
    if (!Number.isInteger(raw) || raw < 1 || raw > 1000)
      throw new UserError(400, 'invalid request: limit: a whole number from 1 to 1000');
    const schedule = settings.dir ? parseSchedule(settings.schedule) : null;
    const bundles = await listBundles(pool, raw);
    res.json({
      schedule: {
        enabled: schedule !== null,
        schedule: settings.schedule,
        timezone: 'UTC',
        dir: settings.dir ?? null,
        retentionDays: settings.retentionDays,
        nextRunAt: schedule ? nextSlot(schedule, new Date()).toISOString() : null,
        s3Upload: 'not available: no S3 client is installed',
      },
      bundles: bundles.map(bundleView),
    } satisfies EvidenceList);
  });
  return router;
}
