import type { Pool } from '../core/db.ts';
import { enqueueJob, type TaskList } from '../core/jobs.ts';
import type { Logger } from '../core/logger.ts';
import { pruneSideEffects } from '../core/side-effects.ts';

/**
 * The daily prune of controlroom.side_effects (the record of each Slack post and GitHub review done, which
 * makes a retry skip the steps already taken): without it the table grows by every thread reply and
 * escalation for ever. One keyed job for every instance; each run re-queues the next a day later.
 */
export const SIDE_EFFECTS_PRUNE_TASK = 'side_effects_prune';
const DAY_MS = 24 * 60 * 60 * 1000;

declare global {
  namespace GraphileWorker {
    interface Tasks {
      /** Delete side-effect records older than SIDE_EFFECTS_RETENTION_DAYS, then queue the next run. */
      side_effects_prune: Record<string, never>;
    }
  }
}

/**
 * Queues the next prune a day from `now`. preserve_run_at: a restart (or a second instance starting)
 * keeps the pending run's time instead of pushing it back a day, so frequent restarts cannot starve it.
 */
export const scheduleSideEffectsPrune = (
  pool: Pool,
  now = new Date(),
  mode: 'preserve_run_at' | 'replace' = 'preserve_run_at'
) =>
  enqueueJob(
    pool,
    SIDE_EFFECTS_PRUNE_TASK,
    {},
    {
      jobKey: SIDE_EFFECTS_PRUNE_TASK,
      jobKeyMode: mode,
      runAt: new Date(now.getTime() + DAY_MS),
      queueName: SIDE_EFFECTS_PRUNE_TASK,
      maxAttempts: 5,
    }
  );

export function sideEffectsRetentionTasks(pool: Pool, retentionDays: number, logger: Logger): TaskList {
  return {
    [SIDE_EFFECTS_PRUNE_TASK]: async () => {
      const deleted = await pruneSideEffects(pool, retentionDays);
      if (deleted > 0) logger.info({ deleted, retentionDays }, 'side-effect records past their retention deleted');
      // The next run a day from now (replace: a job another instance queued meanwhile takes this time too).
      await scheduleSideEffectsPrune(pool, new Date(), 'replace');
    },
  };
}
