import { z } from 'zod';
import { acceptingOldNames, CalendarDate, need, Timestamp, UpgradeHint, Uuid } from './common.ts';

/** /api/limits/requests: the "request increase" flow a hard-limit refusal offers. */

/** The product plan's meters (core/plan-usage.ts METERS has the same keys; limits.test.ts checks it). */
export const METERED_FEATURES = ['rates', 'bulk_rating', 'directory', 'api_access'] as const;
export type MeteredFeature = (typeof METERED_FEATURES)[number];

/** The most anyone may ask for; a bigint column holds more, but a larger number is a typo. */
export const MAX_REQUESTED_LIMIT = 1_000_000_000;

/** POST /api/limits/requests (`company_id`, `requested_limit` accepted). */
export const LimitIncreaseRequestBody = acceptingOldNames(
  z
    .object({
      companyId: Uuid,
      feature: z.string(need('a string')).refine((f) => (METERED_FEATURES as readonly string[]).includes(f), {
        error: (issue) => `must be one of ${METERED_FEATURES.join(', ')}, not '${String(issue.input)}'`,
      }),
      requestedLimit: z
        .number(need('a number'))
        .int('must be a whole number')
        .positive('must be above 0')
        .max(MAX_REQUESTED_LIMIT, `must be at most ${MAX_REQUESTED_LIMIT}`),
      reason: z
        .string(need('a string'))
        .trim()
        .min(3, 'give a reason of at least 3 characters')
        .max(1000, 'at most 1000 characters'),
    })
    .strict(),
  { company_id: 'companyId', requested_limit: 'requestedLimit' }
);
export type LimitIncreaseRequestBody = z.infer<typeof LimitIncreaseRequestBody>;

export const LimitIncreaseRequest = z.object({
  id: z.number(),
  companyId: z.string(),
  feature: z.string(),
  unit: z.string(),
  periodStart: CalendarDate,
  currentLimit: z.number(),
  requestedLimit: z.number(),
  reason: z.string(),
  requestedBy: z.string(),
  agentTaskId: z.number(),
  createdAt: Timestamp,
});
export type LimitIncreaseRequest = z.infer<typeof LimitIncreaseRequest>;

/** 201 a new request, 200 the same request made before in this period (`duplicate: true`). */
export const LimitRequestAnswer = z.object({
  request: LimitIncreaseRequest,
  duplicate: z.boolean(),
  upgrade: UpgradeHint.nullable(),
});
export type LimitRequestAnswer = z.infer<typeof LimitRequestAnswer>;

/** GET /api/limits/requests?companyId= (or company_id=): the company's latest 50. */
export const LimitRequestList = z.object({ requests: z.array(LimitIncreaseRequest) });
export type LimitRequestList = z.infer<typeof LimitRequestList>;
