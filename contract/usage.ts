import { z } from 'zod';
import { CalendarDate, Period, Timestamp } from './common.ts';

/** GET /api/usage/:company: the plugin's usage meter, per feature of the plan in the current UTC period. */

export const FeatureUsage = z.object({
  feature: z.string(),
  unit: z.string(),
  period: Period,
  periodStart: CalendarDate,
  /** Exclusive end of the period. */
  periodEnd: Timestamp,
  used: z.number(),
  /** Included amount; null = unlimited. */
  softLimit: z.number().nullable(),
  /** Where the product blocks; null = unlimited. */
  hardLimit: z.number().nullable(),
  remaining: z.number().nullable(),
  /** Percent of the included amount (soft limit): what the 80/90/100% warnings measure. */
  percent: z.number().nullable(),
  overage: z.number(),
  /** Overage units Stripe has, and those still to be sent. */
  overageBilled: z.number(),
  overagePending: z.number(),
  thresholdsCrossed: z.array(z.number()),
  thresholdsNotified: z.array(z.number()),
  blocked: z.boolean(),
});
export type FeatureUsage = z.infer<typeof FeatureUsage>;

export const Usage = z.object({
  companyId: z.string(),
  companyName: z.string(),
  plan: z.string().nullable(),
  billingStatus: z.string().nullable(),
  graceUntil: Timestamp.nullable(),
  trialEndsAt: Timestamp.nullable(),
  currentPeriodEnd: Timestamp.nullable(),
  features: z.array(FeatureUsage),
});
export type Usage = z.infer<typeof Usage>;
