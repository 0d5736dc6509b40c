import express, { type Router } from 'express';
import { requireAction } from '../core/access.ts';
import type { Pool } from '../core/db.ts';
import { UserError } from '../core/errors.ts';
import { listBundles, nextSlot, parseSchedule } from './schedule.ts';

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
    if (!Number.isInteger(raw) || raw < 1 || raw > 1000) throw new UserError(400, 'invalid request: limit: a whole number from 1 to 1000');
    const schedule = settings.dir ? parseSchedule(settings.schedule) : null;
    const bundles = await listBundles(pool, raw);
    res.json({
      schedule: {
        enabled: schedule !== null,
        schedule: settings.schedule,
        timezone: 'UTC',
        dir: settings.dir ?? null,
        retention_days: settings.retentionDays,
        next_run_at: schedule ? nextSlot(schedule, new Date()).toISOString() : null,
        s3_upload: 'not available: no S3 client is installed',
      },
      bundles,
    });
  });
  return router;
}
