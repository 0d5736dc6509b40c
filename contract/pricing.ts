import { z } from 'zod';
import { ModelStatus } from './rating.ts';

/**
 * The pricing-model registry's page API (`/api/pricing`): the overview the Grafana app's Pricing page
 * reads, and the bodies of the Admin changes. Every change that moves prices (candidate share, withdraw,
 * activate, roll back) carries the reason the Admin typed into the confirmation; it is audited with the
 * verified Grafana user.
 */

/** Why a registry change is made: required, trimmed, 3 to 500 characters. */
export const pricingReasonSchema = z
  .string({ error: 'is required: say why (3 to 500 characters)' })
  .trim()
  .min(3, 'must be at least 3 characters: say why')
  .max(500, 'must be at most 500 characters');

/** POST /api/pricing/models/:version/candidate */
export const pricingCandidateRequestSchema = z
  .object({
    /** Share of lanes the candidate prices: > 0 and at most 0.5 (0.1 = 10%); default 0.1. */
    share: z
      .number({ error: 'must be a number between 0 and 0.5 (0.1 = 10% of lanes)' })
      .gt(0, 'must be above 0')
      .max(0.5, 'must be at most 0.5')
      .optional(),
    reason: pricingReasonSchema,
  })
  .strict();
export type PricingCandidateRequest = z.infer<typeof pricingCandidateRequestSchema>;

/** POST /api/pricing/models/:version/activate, POST /api/pricing/rollback, DELETE /api/pricing/candidate */
export const pricingChangeRequestSchema = z.object({ reason: pricingReasonSchema }).strict();
export type PricingChangeRequest = z.infer<typeof pricingChangeRequestSchema>;

/** What one model rated in one role, all time, as the exporter counted it (the drift metrics' totals). */
export const pricingRoleStatsSchema = z.object({
  lanesRated: z.number().int().nonnegative(),
  anomalyLanes: z.number().int().nonnegative(),
  needsReviewLanes: z.number().int().nonnegative(),
  /** anomalyLanes / lanesRated; null before the first lane. */
  anomalyRate: z.number().nullable(),
  needsReviewRate: z.number().nullable(),
  quotedDollars: z.number(),
  quotedMiles: z.number(),
  /** quotedDollars / quotedMiles; null without miles. */
  meanPricePerMile: z.number().nullable(),
});
export type PricingRoleStats = z.infer<typeof pricingRoleStatsSchema>;

export const pricingModelStatusSchema = ModelStatus;
export type PricingModelStatus = z.infer<typeof pricingModelStatusSchema>;

export const pricingModelSummarySchema = z.object({
  version: z.string(),
  status: pricingModelStatusSchema,
  /** The share of lanes it takes while it is the candidate; null for any other status. */
  candidateShare: z.number().nullable(),
  createdBy: z.string(),
  createdAt: z.string(),
  activatedAt: z.string().nullable(),
  retiredAt: z.string().nullable(),
  /** Lanes it priced as the active model, and as the candidate (zeros when it never did). */
  asActive: pricingRoleStatsSchema,
  asCandidate: pricingRoleStatsSchema,
});
export type PricingModelSummary = z.infer<typeof pricingModelSummarySchema>;

/** GET /api/pricing/overview (Viewer) */
export const pricingOverviewSchema = z.object({
  models: z.array(pricingModelSummarySchema),
  active: z.string().nullable(),
  candidate: z.object({ version: z.string(), share: z.number() }).nullable(),
  /** The model a rollback would re-activate (the most recently retired); null when there is none. */
  rollbackTo: z.string().nullable(),
  /** When the exporter last folded rated lanes into the totals; null before its first refresh. */
  statsAsOf: z.string().nullable(),
  /** |candidate − active| / active above which a candidate's lane is an anomaly (0.1). */
  anomalyThreshold: z.number(),
  maxCandidateShare: z.number(),
});
export type PricingOverview = z.infer<typeof pricingOverviewSchema>;
