import type { Router } from 'express';
import type { Pool } from '../core/db.ts';
import type { Feature, FeatureDeps } from '../core/feature.ts';
import type { TaskList } from '../core/jobs.ts';
import type { Logger } from '../core/logger.ts';
import type { BillingConfig } from './config.ts';
import { billingTasks, scheduleBillingTick } from './jobs.ts';
import { usageApiRouter } from './routes.ts';
import { createStripeClient, type Stripe } from './stripe.ts';
import { stripeWebhookRouter } from './webhooks.ts';

export type { BillingConfig } from './config.ts';
export { billingConfigShape } from './config.ts';

export interface Billing {
  stripe: Stripe | null;
  /** Mount under /webhooks: POST /webhooks/stripe. */
  webhookRouter: Router;
  /** Mount under /api: GET /api/usage/:company. */
  apiRouter: Router;
  /** Spread into startJobQueue's taskList. */
  tasks: TaskList;
  /** Queues the first billing run (call once after the job queue started). */
  start(): Promise<void>;
}

/**
 * Everything billing needs wired into the service (createBillingFeature). `pool` serves the HTTP routes, `workerPool` the
 * billing job (as the other queue tasks use the worker pool).
 */
export function createBilling(pool: Pool, workerPool: Pool, config: BillingConfig, logger: Logger): Billing {
  const log = logger.child({ component: 'billing' });
  const stripe = createStripeClient(config);
  if (!stripe)
    log.warn('STRIPE_SECRET_KEY is not set: overage is computed and kept in the outbox, but not sent to Stripe');
  return {
    stripe,
    webhookRouter: stripeWebhookRouter(pool, config, stripe, log),
    apiRouter: usageApiRouter(pool),
    tasks: billingTasks(workerPool, config, stripe, log),
    start: () => scheduleBillingTick(pool, config, { now: true }),
  };
}

/** The billing feature (see createBilling): Stripe webhooks, the usage API, the billing tick. */
export function createBillingFeature({ pool, workerPool, config, logger }: FeatureDeps<BillingConfig>): Feature {
  const billing = createBilling(pool, workerPool, config, logger);
  return {
    name: 'billing',
    apiRouter: billing.apiRouter,
    webhookRouter: billing.webhookRouter,
    tasks: billing.tasks,
    start: billing.start,
  };
}
