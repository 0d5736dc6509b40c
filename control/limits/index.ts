/** control/limits: requests to raise a limit, from a hard-limit refusal (POST and GET /api/limits/requests). */
import type { Feature, FeatureDeps } from '../../core/feature.ts';
import { limitRequestsRouter } from './routes.ts';

export function createLimitsFeature({ pool }: FeatureDeps<unknown>): Feature {
  return { name: 'limits', apiRouter: limitRequestsRouter(pool) };
}
