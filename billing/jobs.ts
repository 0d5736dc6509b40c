import type { Pool, PoolClient } from '../core/db.ts';
import { usageAgainstPlan } from '../core/plan-usage.ts';
import { enqueueJob, type TaskList } from '../core/jobs.ts';
import type { Logger } from '../core/logger.ts';
import type { BillingConfig } from './config.ts';
import { expireGrace } from './entitlements.ts';
import {
  notifyThresholds,
  queueOverage,
  sendPending,
  type NoticeOutcome,
  type QueuedMeterEvent,
  type SendResult,
} from './meter.ts';
import type { Stripe } from './stripe.ts';

export const BILLING_TICK_TASK = 'billing_tick';

declare global {
  namespace GraphileWorker {
    interface Tasks {
      /** One billing run (overage → outbox → Stripe, threshold notices, grace expiry); reschedules itself. */
      billing_tick: Record<string, never>;
    }
  }
}
const JOB_KEY = 'billing:tick';

/** Schedules the next billing run (one pending run at a time: the job key). */
export async function scheduleBillingTick(
  db: Pool | PoolClient,
  config: BillingConfig,
  options: { now?: boolean } = {}
): Promise<void> {
  await enqueueJob(
    db,
    BILLING_TICK_TASK,
    {},
    {
      jobKey: JOB_KEY,
      // At start-up keep an already pending run's time; after a run, replace it with the next one.
      jobKeyMode: options.now ? 'preserve_run_at' : 'replace',
      runAt: new Date(Date.now() + (options.now ? 0 : config.BILLING_TICK_SECONDS * 1000)),
      queueName: 'billing',
      maxAttempts: 5,
    }
  );
}

export interface BillingRun {
  graceExpired: number;
  notices: NoticeOutcome[];
  queued: QueuedMeterEvent[];
  sent: SendResult | null;
}

/**
 * One billing run: ended grace periods become past_due; threshold notices for the current period;
 * overage above the soft limit into the outbox (the current period, and the previous one during the
 * first day of a new period); then due outbox rows to Stripe.
 */
export async function runBilling(
  pool: Pool,
  config: BillingConfig,
  stripe: Stripe | null,
  logger: Logger
): Promise<BillingRun> {
  const graceExpired = await expireGrace(pool);
  const usages = await usageAgainstPlan(pool, { limitedOnly: true, includePreviousPeriod: true });
  const notices = await notifyThresholds(pool, usages);
  const queued = await queueOverage(pool, config, usages, logger);
  const sent = stripe ? await sendPending(pool, stripe, config, logger) : null;
  if (!stripe) logger.debug('STRIPE_SECRET_KEY not set: meter events wait in the outbox');
  return { graceExpired, notices, queued, sent };
}

/** The graphile-worker task: a run, then the next one scheduled whatever happened. */
export function billingTasks(pool: Pool, config: BillingConfig, stripe: Stripe | null, logger: Logger): TaskList {
  return {
    [BILLING_TICK_TASK]: async () => {
      try {
        const run = await runBilling(pool, config, stripe, logger);
        // Every BILLING_TICK_SECONDS: a line at info only when the run did something.
        const acted =
          run.graceExpired > 0 ||
          run.notices.length > 0 ||
          run.queued.length > 0 ||
          (run.sent?.sent.length ?? 0) > 0 ||
          (run.sent?.failed.length ?? 0) > 0;
        logger[acted ? 'info' : 'debug'](
          {
            graceExpired: run.graceExpired,
            notices: run.notices.length,
            queued: run.queued.length,
            sent: run.sent?.sent.length ?? 0,
            failed: run.sent?.failed.length ?? 0,
          },
          'billing run'
        );
        for (const notice of run.notices) {
          logger.info(
            { ...notice, fn_name: 'notify_ops' },
            `notify_ops task ${notice.agentTaskId} created: ${notice.feature} at ${notice.threshold}% for company ${notice.companyId}`
          );
        }
      } finally {
        await scheduleBillingTick(pool, config);
      }
    },
  };
}
