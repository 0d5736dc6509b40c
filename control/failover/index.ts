/**
 * Regions and failover (see control/failover/README.md).
 *
 * Wiring:
 * - `createFailoverFeature(deps)` in cli/services.ts's feature list; its start() (after migrations) upserts
 *   FAILOVER_REGIONS and starts this instance's engine (lease, health checks, automatic failover, cutover
 *   steps). `startFailover({ pool, config, logger })` does the same in one call (tests).
 * - the tms_region_* metrics are read by exporter/collectors/regions.ts (the exporter's collector list).
 * - `runDrill({ pool, config, logger })` for `controlroom drill`, `runGameDay({ ..., scenario })` for
 *   `controlroom gameday <scenario>`.
 */
import type { Router } from 'express';
import type { Pool } from '../../core/db.ts';
import type { Feature, FeatureDeps } from '../../core/feature.ts';
import type { Logger } from '../../core/logger.ts';
import { FailoverEngine, type Probes } from './engine.ts';
import { regionsApiRouter } from './routes.ts';
import { failoverSettings, parseRegions, type FailoverConfig, type FailoverSettings } from './settings.ts';
import { syncRegions } from './store.ts';

export { runDrill, type DrillOptions, type DrillResult, type RunDrillOptions } from './drill.ts';
export {
  GAMEDAY_SCENARIOS,
  runGameDay,
  type GameDayOptions,
  type GameDayResult,
  type GameDayScenario,
} from './gameday.ts';
export { FailoverEngine } from './engine.ts';
export { loadRouting } from './routes.ts';
export type { Routing } from '@controlroom/contract';
export { failoverConfigShape } from './config.ts';
export {
  failoverSettings,
  parseRegions,
  LIVE_SCOPE,
  type FailoverConfig,
  type FailoverSettings,
  type RegionSpec,
} from './settings.ts';

export interface StartFailoverOptions {
  pool: Pool;
  config: FailoverConfig;
  logger: Logger;
  /** Finer settings than the config allows (tests: millisecond intervals). */
  settings?: Partial<FailoverSettings>;
  /** Replaces the HTTP probes (tests). */
  probes?: Probes;
}

export interface FailoverService {
  /** Mount under /api: /regions, /regions/routing, /regions/failover, /regions/shift, /regions/cutover/abort. */
  apiRouter: Router;
  engine: FailoverEngine;
  settings: FailoverSettings;
  /** Stops the engine and gives the lease up (a cutover in progress stays stored and continues on the next holder). */
  stop(): Promise<void>;
}

/** Builds the engine and its router without touching the database; start() syncs the regions and runs the engine. */
function prepareFailover({
  pool,
  config,
  logger,
  settings: overrides,
  probes,
}: StartFailoverOptions): FailoverService & { start(): Promise<void> } {
  const regions = parseRegions(config.FAILOVER_REGIONS);
  const settings = failoverSettings(config, overrides);
  const log = logger.child({ component: 'failover' });
  if (config.FAILOVER_REGIONS === undefined || config.FAILOVER_REGIONS.trim() === '') {
    // Not "the checks fail": under `controlroom start` the demo's stand-ins (db/demo/regions.ts) answer on
    // these ports, and the regions read as healthy; the warning must be true in both cases.
    log.warn(
      { regions: regions.map((r) => `${r.name} ${r.base_url}`) },
      "FAILOVER_REGIONS is not set: the default regions on 127.0.0.1 are used (the demo's stand-ins under `controlroom start`; elsewhere nothing answers there, their checks fail and automatic failover does not act)"
    );
  }
  const engine = new FailoverEngine(pool, settings, logger, probes);
  return {
    apiRouter: regionsApiRouter(pool, settings, engine),
    engine,
    settings,
    async start() {
      await syncRegions(pool, settings.scope, regions, log);
      await engine.start();
    },
    stop: () => engine.stop(),
  };
}

export async function startFailover(options: StartFailoverOptions): Promise<FailoverService> {
  const { start, ...service } = prepareFailover(options);
  await start();
  return service;
}

/**
 * The failover feature: /api/regions/... and this instance's engine. Lease renewals must never wait behind
 * exporter queries or queue jobs, so it has its own small pool.
 */
export function createFailoverFeature({ openPool, config, logger }: FeatureDeps<FailoverConfig>): Feature {
  const failover = prepareFailover({ pool: openPool('controlroom-failover', 3), config, logger });
  return { name: 'failover', apiRouter: failover.apiRouter, start: failover.start, stop: failover.stop };
}
