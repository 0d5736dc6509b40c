import type { AlertSource } from './events.ts';

/**
 * Queue tasks that cross alerting's rooms: queued in one room, handled in another, so their names are
 * declared here, one level up, and both rooms import them from here (never from each other). A task that
 * stays in one room is defined beside its handler (freeze/jobs.ts, slack/pager.ts).
 */

/** Queued by receiver/inbox.ts with the stored notification; handled by alerting/worker.ts. */
export const ALERT_GROUP_TASK = 'alert_group';
/**
 * Queued by freeze/jobs.ts with every published change, in the same transaction as its freeze_history row,
 * so each change is handed on exactly once; handled by slack/freeze-announcer.ts.
 */
export const FREEZE_CHANGED_TASK = 'freeze_changed';

declare global {
  namespace GraphileWorker {
    interface Tasks {
      /** Act on a group's alert state changes not processed yet (overage, freeze triggers, Slack page). */
      alert_group: { source: AlertSource; groupKey: string };
      /** Announce one freeze change (controlroom.freeze_history.id, as text). */
      freeze_changed: { historyId: string };
    }
  }
}
