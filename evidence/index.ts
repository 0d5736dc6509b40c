/**
 * Evidence: `controlroom evidence export|verify` (cli.ts) and, with EVIDENCE_DIR set, the weekly bundle
 * written by a self-rescheduling queue job (schedule.ts), listed at GET /api/evidence.
 */
import path from 'node:path';
import { projectRoot } from '../core/config.ts';
import type { Feature, FeatureDeps } from '../core/feature.ts';
import type { EvidenceConfig } from './config.ts';
import { evidenceApiRouter } from './routes.ts';
import { evidenceTasks, scheduledEvidenceSettings, scheduleEvidence } from './schedule.ts';

export type { EvidenceConfig } from './config.ts';
export { evidenceConfigShape } from './config.ts';

/**
 * The evidence feature. Scheduling off (no EVIDENCE_DIR, or "off") is warned once and leaves only the
 * list endpoint; scheduling on without a signing key or Prometheus is warned too, since every bundle
 * would then fail (and alert).
 */
export function createEvidenceFeature({ pool, workerPool, config, logger }: FeatureDeps<EvidenceConfig>): Feature {
  const log = logger.child({ component: 'evidence' });
  const evidence = scheduledEvidenceSettings(config, path.join(projectRoot, 'dashboards'));
  if (!evidence)
    log.warn('EVIDENCE_DIR is not set (or EVIDENCE_SCHEDULE is off): no weekly evidence bundles are written');
  else if (!config.EVIDENCE_SIGNING_KEY || !config.PROMETHEUS_URL) {
    log.warn(
      'EVIDENCE_SIGNING_KEY or PROMETHEUS_URL is not set: every scheduled evidence bundle will fail (and alert)'
    );
  }
  return {
    name: 'evidence',
    apiRouter: evidenceApiRouter(pool, {
      dir: config.EVIDENCE_DIR,
      schedule: config.EVIDENCE_SCHEDULE,
      retentionDays: config.EVIDENCE_RETENTION_DAYS,
    }),
    ...(evidence ? { tasks: evidenceTasks(workerPool, evidence, log) } : {}),
    async start() {
      if (evidence)
        log.info(
          { slot: await scheduleEvidence(pool, evidence), dir: evidence.dir },
          'weekly evidence bundle scheduled'
        );
    },
  };
}
