import { Logger as WorkerLogger, makeWorkerUtils, run, type TaskList } from 'graphile-worker';
import type { Pool } from '../../core/db.ts';
import type { Logger } from '../../core/logger.ts';
import { requestFreezeSync } from '../freeze/jobs.ts';
import { recordFreezeTriggers } from '../freeze/triggers.ts';
import { ESCALATE_TASK, PAGE_REFRESH_TASK, STORM_REFRESH_TASK, type SlackPager } from '../slack/pager.ts';
import { markProcessed, pendingEvents } from './events.ts';
import { ALERT_GROUP_TASK } from './inbox.ts';
import { ensureOverageTask } from './overage.ts';

export interface ReceiverWorkerOptions {
  pool: Pool;
  pager: SlackPager | null;
  /** Further tasks run by the same workers (the release freeze's). */
  extraTasks?: TaskList;
  logger: Logger;
  concurrency: number;
  /** Stable per instance (CONTROLROOM_INSTANCE_ID): two running instances must not share it. */
  instanceId: string;
}

export interface ReceiverWorker {
  workerIds: string[];
  stop(): Promise<void>;
}

const stringField = (payload: unknown, field: string): string => {
  const value = (payload as Record<string, unknown> | null)?.[field];
  if (typeof value !== 'string' || !value) throw new Error(`job payload lacks ${field}`);
  return value;
};

/**
 * Acts on the inbox. Jobs are graphile-worker jobs in Postgres: they survive restarts, a failed one is
 * retried with exponential backoff (up to 25 attempts), and every step below is safe to run again.
 */
export function receiverTasks(pool: Pool, pager: SlackPager | null, logger: Logger): TaskList {
  return {
    [ALERT_GROUP_TASK]: async (payload) => {
      const source = stringField(payload, 'source');
      const groupKey = stringField(payload, 'groupKey');
      const pending = await pendingEvents(pool, source, groupKey);
      if (pending.length === 0) return;
      for (const event of pending) await ensureOverageTask(pool, event);
      if (await recordFreezeTriggers(pool, pending)) await requestFreezeSync(pool);
      if (pager) await pager.publish(source, groupKey, pending);
      else logger.debug({ groupKey }, 'Slack is not configured: alert group stored without a page');
      await markProcessed(pool, pending.map((e) => e.id));
    },
    [ESCALATE_TASK]: async (payload) => pager?.escalate(stringField(payload, 'pageId')),
    [STORM_REFRESH_TASK]: async (payload) => pager?.refreshStorm(stringField(payload, 'stormId')),
    [PAGE_REFRESH_TASK]: async (payload) => {
      const note = (payload as { note?: unknown }).note;
      await pager?.refreshPage(stringField(payload, 'pageId'), typeof note === 'string' ? note : null);
    },
  };
}

/**
 * Starts `concurrency` single-job workers with stable ids. A job a crashed instance held stays locked
 * (graphile-worker frees such locks only after four hours), so on start each instance first releases
 * the jobs still locked under its own ids: work interrupted by a kill -9 resumes at once.
 */
export async function startReceiverWorker(options: ReceiverWorkerOptions): Promise<ReceiverWorker> {
  const log = options.logger.child({ component: 'receiver-worker' });
  const logger = new WorkerLogger(() => (level, message, meta) => {
    // graphile-worker logs every completed job at info; that is debug detail for us.
    const method = level === 'error' ? 'error' : level === 'warning' ? 'warn' : 'debug';
    log[method]({ ...meta }, message);
  });
  const workerIds = Array.from({ length: options.concurrency }, (_, i) => `controlroom-${options.instanceId}-${i}`);
  const utils = await makeWorkerUtils({ pgPool: options.pool, logger });
  try {
    await utils.forceUnlockWorkers(workerIds);
  } finally {
    await utils.release();
  }
  const taskList = { ...receiverTasks(options.pool, options.pager, log), ...options.extraTasks };
  const runners = await Promise.all(
    workerIds.map((workerId) => {
      // run() honours workerId (for concurrency 1) although RunnerOptions does not declare it.
      const runnerOptions = { pgPool: options.pool, taskList, concurrency: 1, workerId, noHandleSignals: true, pollInterval: 1_000, logger };
      return run(runnerOptions);
    }),
  );
  let stopping: Promise<void> | null = null;
  return {
    workerIds,
    stop() {
      stopping ??= Promise.all(runners.map((r) => r.stop())).then(() => undefined);
      return stopping;
    },
  };
}
