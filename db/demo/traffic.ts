import type { Pool } from '../../core/db.ts';
import type { Logger } from '../../core/logger.ts';
import type { IncidentKind } from './schedule.ts';
import { seedDemo } from './seed.ts';
import { createDemoState, type DemoOptions } from './state.ts';
import { compactCounts } from './summary.ts';
import { runDemoTick } from './tick.ts';

/**
 * Seeds the demo (once) and then writes a tick of traffic every tickMs until stopped. A failed seed or
 * tick is logged and tried again on the next tick: a database restart must not kill the demo process.
 * Ticks never overlap; a slow tick delays the next one rather than piling up.
 */
export function startDemoTraffic(pool: Pool, options: DemoOptions = {}, logger?: Logger): { stop(): Promise<void> } {
  const state = createDemoState(options);
  const { tickMs, now } = state.options;
  const log = logger?.child({ component: 'demo-traffic' });
  let seeded = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> = Promise.resolve();
  let previous = new Set<IncidentKind>();

  const step = async () => {
    const started = Date.now();
    try {
      if (!seeded) {
        const { created } = await seedDemo(pool, options);
        seeded = true;
        log?.info(
          { created },
          created ? 'demo tenants and history seeded' : 'demo data already present, not reseeding'
        );
      }
      const summary = await runDemoTick(pool, state, now());
      reportIncidents(new Set(summary.incidents));
      log?.debug(
        {
          incidents: summary.incidents,
          inserted: compactCounts(summary.inserted),
          updated: compactCounts(summary.updated),
        },
        'demo tick'
      );
    } catch (err) {
      log?.error({ err }, seeded ? 'demo tick failed, retrying next tick' : 'demo seed failed, retrying next tick');
    }
    if (!stopped) timer = setTimeout(run, Math.max(0, tickMs - (Date.now() - started)));
  };
  const run = () => {
    inFlight = step();
  };

  // Operators watching dashboards want to know which red they are looking at.
  const reportIncidents = (current: Set<IncidentKind>) => {
    for (const incident of state.incidents) {
      if (!previous.has(incident.kind))
        log?.warn({ incident: incident.kind, until: incident.endsAt }, `demo incident started: ${incident.summary}`);
    }
    for (const kind of previous) if (!current.has(kind)) log?.info({ incident: kind }, 'demo incident ended');
    previous = current;
  };

  run();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await inFlight;
    },
  };
}
