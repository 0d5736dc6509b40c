import type { TaskList } from '../../core/jobs.ts';
import type { Pool } from '../../core/db.ts';
import type { Logger } from '../../core/logger.ts';
import { requestFreezeSync } from '../freeze/jobs.ts';
import { recordFreezeTriggers } from '../freeze/triggers.ts';
import { ESCALATE_TASK, PAGE_REFRESH_TASK, STORM_REFRESH_TASK, type SlackPager } from '../slack/pager.ts';
import { markProcessed, pendingEvents } from './events.ts';
import { ALERT_GROUP_TASK } from './inbox.ts';
import { ensureOverageTask } from './overage.ts';

const stringField = (payload: unknown, field: string): string => {
  const value = (payload as Record<string, unknown> | null)?.[field];
  if (typeof value !== 'string' || !value) throw new Error(`job payload lacks ${field}`);
  return value;
};

/**
 * Acts on the inbox. Jobs are graphile-worker jobs in Postgres: they survive restarts, a failed one is
 * retried with exponential backoff (up to 25 attempts), and every step below is safe to run again: the
 * database steps are idempotent, and each Slack call is recorded as done before the next step (see SlackPager).
 */
export function receiverTasks(pool: Pool, pager: SlackPager | null, logger: Logger): TaskList {
  return {
    [ALERT_GROUP_TASK]: async (payload) => {
      const source = stringField(payload, 'source');
      const groupKey = stringField(payload, 'groupKey');
      const pending = await pendingEvents(pool, source, groupKey);
      if (pending.length === 0) return;
      const tasks: number[] = [];
      for (const event of pending) {
        const overage = await ensureOverageTask(pool, event);
        if (overage?.created && overage.agentTaskId !== undefined) tasks.push(overage.agentTaskId);
      }
      if (await recordFreezeTriggers(pool, pending)) await requestFreezeSync(pool);
      if (pager) await pager.publish(source, groupKey, pending);
      await markProcessed(pool, pending.map((e) => e.id));
      // One line per product event for the operator (a retry after markProcessed has nothing pending).
      for (const event of pending) {
        logger.info(
          { source, alertname: event.alertname, severity: event.severity, status: event.status, labels: event.labels },
          `alert ${event.status}: ${event.alertname}${event.severity ? ` (${event.severity})` : ''}${event.annotations.summary ? `: ${event.annotations.summary}` : ''}` +
            (event.status === 'firing' ? (pager ? ' (paged in Slack)' : ' (stored; Slack not configured, no page posted)') : ''),
        );
      }
      for (const agentTaskId of tasks) logger.info({ agentTaskId, fn_name: 'notify_ops' }, `notify_ops task ${agentTaskId} created`);
    },
    [ESCALATE_TASK]: async (payload) => pager?.escalate(stringField(payload, 'pageId')),
    [STORM_REFRESH_TASK]: async (payload) => pager?.refreshStorm(stringField(payload, 'stormId')),
    [PAGE_REFRESH_TASK]: async (payload, helpers) => {
      const note = (payload as { note?: unknown }).note;
      // Each button press queues its own (unkeyed) job: its id names the press across retries.
      await pager?.refreshPage(stringField(payload, 'pageId'), typeof note === 'string' ? note : null, `job:${helpers.job.id}`);
    },
  };
}
