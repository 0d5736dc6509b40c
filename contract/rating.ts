import { z } from 'zod';
import { Timestamp } from './common.ts';

/**
 * /api/pricing: the pricing-model registry. A model's `params` are validated by the service's
 * pricingModelParamsSchema (control/rating/model.ts), which names each bad field.
 */

export const ModelStatus = z.enum(['active', 'candidate', 'retired', 'draft']);
export type ModelStatus = z.infer<typeof ModelStatus>;

export const PricingModelView = z.object({
  version: z.string(),
  status: ModelStatus,
  /** The share of lanes the model takes while it is the candidate (0..0.5). */
  candidateShare: z.number(),
  createdBy: z.string(),
  createdAt: Timestamp,
  activatedAt: Timestamp.nullable(),
  retiredAt: Timestamp.nullable(),
  params: z.record(z.string(), z.unknown()),
});
export type PricingModelView = z.infer<typeof PricingModelView>;

export const PricingModelList = z.object({ models: z.array(PricingModelView) });
export type PricingModelList = z.infer<typeof PricingModelList>;
export const PricingModelAnswer = z.object({ model: PricingModelView });
export type PricingModelAnswer = z.infer<typeof PricingModelAnswer>;

// The request bodies of the registry's changes (candidate share, activate, roll back, withdraw) are in pricing.ts.
