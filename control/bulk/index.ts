/**
 * control/bulk: bulk rating. A CSV upload is stored as a job with its lanes (routes.ts, jobs.ts) and
 * rated in committed batches by a queue task (process.ts) against the pricing-model registry.
 */
import type { Feature, FeatureDeps } from '../../core/feature.ts';
import { createRatingService } from '../rating/service.ts';
import type { BulkConfig } from './config.ts';
import { BULK_RATE_TASK } from './jobs.ts';
import { bulkRateTask } from './process.ts';
import { bulkRatingRouter } from './routes.ts';

export type { BulkConfig } from './config.ts';
export { bulkConfigShape } from './config.ts';

/** The bulk rating feature: /api/bulk-rating/jobs... and the bulk_rate task. */
export function createBulkRatingFeature({
  pool,
  workerPool,
  openPool,
  config,
  logger,
}: FeatureDeps<BulkConfig>): Feature {
  const rating = createRatingService();
  const uploadPool = openPool('controlroom-bulk-upload', config.BULK_UPLOAD_CONCURRENCY);
  return {
    name: 'bulk-rating',
    apiRouter: bulkRatingRouter({ pool, uploadPool }, rating, config),
    tasks: {
      [BULK_RATE_TASK]: bulkRateTask(
        workerPool,
        rating,
        config.BULK_RATE_BATCH,
        logger.child({ component: 'bulk-rating' })
      ),
    },
  };
}
