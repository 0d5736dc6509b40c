import { z } from 'zod';
import { int } from '../../core/config.ts';

/** Bulk rating's keys (spread into the service's schema by cli/config.ts). */
export const bulkConfigShape = {
  BULK_MAX_UPLOAD_BYTES: int(50 * 1024 * 1024),
  BULK_MAX_LANES: int(200_000),
  BULK_MAX_ERRORS_REPORTED: int(1_000),
  BULK_RATE_BATCH: int(5_000),
};

export type BulkConfig = z.infer<z.ZodObject<typeof bulkConfigShape>>;
