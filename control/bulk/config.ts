import { z } from 'zod';
import { int } from '../../core/config.ts';

/** Bulk rating's keys (spread into the service's schema by cli/config.ts). */
export const bulkConfigShape = {
  BULK_MAX_UPLOAD_BYTES: int(50 * 1024 * 1024),
  BULK_MAX_LANES: int(200_000),
  BULK_MAX_ERRORS_REPORTED: int(1_000),
  BULK_RATE_BATCH: int(5_000),
  // An upload is read inside its job's transaction (lanes are COPYed as they arrive), so each one in
  // progress holds a database connection: they get a pool of this size of their own, and one more
  // upload while all are busy is refused with 429 instead of starving the API, exporter or worker.
  BULK_UPLOAD_CONCURRENCY: int(2),
};

export type BulkConfig = z.infer<z.ZodObject<typeof bulkConfigShape>>;
