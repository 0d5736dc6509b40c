import { Registry } from 'prom-client';
import type { Pool } from '../core/db.ts';
import type { Logger } from '../core/logger.ts';
import { IncidentsCollector } from '../alerting/incidents/collector.ts';
import { createRegionsCollector } from './collectors/regions.ts';
import { EvidenceCollector } from './collectors/evidence.ts';
import { PricingDriftCollector, PricingRegistryCollector } from './collectors/pricing-drift.ts';
import { AgentTasksCollector } from './collectors/agent-tasks.ts';
import { apiRequestsCollector } from './collectors/api-requests.ts';
import { BusinessCollector } from './collectors/business.ts';
import type { CollectorContext, ExporterSettings } from './collectors/context.ts';
import { quoteLatencyCollector } from './collectors/quote-latency.ts';
import { ReleaseFreezeCollector } from './collectors/release-freeze.ts';
import { UsageCollector } from './collectors/usage.ts';
import { createExporterMetrics, type ExporterMetrics } from './metrics.ts';
import { CollectorRunner } from './runner.ts';

export interface Exporter {
  registry: Registry;
  metrics: ExporterMetrics;
  runner: CollectorRunner;
}

/**
 * Builds the metrics (in `registry`, a new one unless given), every collector and the runner that
 * refreshes them; call runner.start() to go live.
 */
export function createExporter(
  pool: Pool,
  settings: ExporterSettings,
  logger: Logger,
  registry: Registry = new Registry()
): Exporter {
  const metrics = createExporterMetrics(registry);
  const ctx: CollectorContext = { pool, metrics, settings };
  const collectors = [
    apiRequestsCollector(ctx),
    quoteLatencyCollector(ctx),
    new AgentTasksCollector(ctx),
    new UsageCollector(ctx),
    new BusinessCollector(ctx),
    new ReleaseFreezeCollector(ctx),
    createRegionsCollector(ctx),
    new EvidenceCollector(ctx),
    new IncidentsCollector(ctx),
    new PricingDriftCollector(ctx),
    new PricingRegistryCollector(ctx),
  ];
  return { registry, metrics, runner: new CollectorRunner(registry, collectors, logger) };
}
