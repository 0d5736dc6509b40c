import type { TaskList } from '../core/jobs.ts';
import type { Pool } from '../core/db.ts';
import type { Logger } from '../core/logger.ts';
import { markProcessed, pendingEvents } from './events.ts';
import { requestFreezeSync } from './freeze/jobs.ts';
import { recordFreezeTriggers } from './freeze/triggers.ts';
import { recordIncidentTimeline, type IncidentSettings } from './incidents/timeline.ts';
import { ensureOverageTask } from './receiver/overage.ts';
import type { IngestPriority } from '../core/ingest-priority.ts';
import type { SlackPager } from './slack/pager.ts';
import { ALERT_GROUP_TASK } from './tasks.ts';

/**
 * Acts on the inbox: for each alert group with unprocessed state changes, the incident timeline
 * (incidents/), the overage tasks (receiver/), the freeze triggers (freeze/) and the Slack page (slack/), in
 * that order, then marks the changes done.
 * This worker is the only place that sees all three rooms; they never call each other.
 *
 * Jobs are graphile-worker jobs in Postgres: they survive restarts, a failed one is retried with
 * exponential backoff (up to 25 attempts), and every step below is safe to run again: the database steps
 * are idempotent, and each Slack call is recorded as done before the next step (see SlackPager).
 */
export function receiverTasks(
  pool: Pool,
  pager: SlackPager | null,
  logger: Logger,
  incidents: IncidentSettings,
  /** While this process's webhooks have a backlog, a job waits before it starts (during its first `maxWaitMs`). */
  ingest?: { priority: IngestPriority; maxWaitMs: number }
): TaskList {
  return {
    [ALERT_GROUP_TASK]: async ({ source, groupKey }) => {
      if (ingest) await ingest.priority.yieldToWebhooks(ingest.maxWaitMs);
      const pending = await pendingEvents(pool, source, groupKey);
      if (pending.length === 0) return;
      // The incident opens before the page is posted, so a button on the page always finds it.
      for (const change of await recordIncidentTimeline(pool, source, groupKey, incidents)) {
        logger.info(
          { groupKey, incidentId: change.incidentId, severity: change.severity },
          `incident ${change.change}`
        );
      }
      const tasks: number[] = [];
      for (const event of pending) {
        const overage = await ensureOverageTask(pool, event);
        if (overage?.created && overage.agentTaskId !== undefined) tasks.push(overage.agentTaskId);
      }
      if (await recordFreezeTriggers(pool, pending)) await requestFreezeSync(pool);
      if (pager) await pager.publish(source, groupKey, pending);
      await markProcessed(
        pool,
        pending.map((e) => e.id)
      );
      // One line per product event for the operator (a retry after markProcessed has nothing pending).
      for (const event of pending) {
        logger.info(
          { source, alertname: event.alertname, severity: event.severity, status: event.status, labels: event.labels },
          `alert ${event.status}: ${event.alertname}${event.severity ? ` (${event.severity})` : ''}${event.annotations.summary ? `: ${event.annotations.summary}` : ''}` +
            (event.status === 'firing'
              ? pager
                ? ' (paged in Slack)'
                : ' (stored; Slack not configured, no page posted)'
              : '')
        );
      }
      for (const agentTaskId of tasks)
        logger.info({ agentTaskId, fn_name: 'notify_ops' }, `notify_ops task ${agentTaskId} created`);
    },
  };
}
