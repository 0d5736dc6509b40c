import { withTransaction, type Pool } from '../../core/db.ts';
import { incidentsAt, loadTriggeredIncidents } from './incidents.ts';
import { ensureTenants, markTenantsStale, type DemoState } from './state.ts';
import { emptyCounts, type TickSummary } from './summary.ts';
import { advanceAgents } from './tick-agents.ts';
import { advanceBusiness } from './tick-business.ts';
import { writeTraffic } from './tick-traffic.ts';

/**
 * One tick of live traffic at `at`, in one transaction. Every row takes its timestamps from `at`, so a
 * fake clock replays exactly; what is going wrong at `at` comes from the incident schedule and the
 * incidents triggered on demand (db/demo/incidents.ts).
 */
export async function runDemoTick(pool: Pool, state: DemoState, at: Date): Promise<TickSummary> {
  // Incidents triggered on demand (`controlroom demo --incident`) join the hourly schedule.
  const triggered = await loadTriggeredIncidents(pool, at);
  const incidents = incidentsAt(triggered, at);
  state.incidents = incidents;
  const tickSeconds = state.options.tickMs / 1000;
  try {
    return await withTransaction(pool, 'READ COMMITTED', async (client) => {
      const limits = await ensureTenants(client, state, at);
      const counts = emptyCounts();
      await writeTraffic(client, state, limits, tickSeconds, at, incidents, counts);
      await advanceAgents(
        client,
        state.rng,
        state.tenants,
        state.options.requestsPerSecond,
        tickSeconds,
        at,
        counts,
        (t) => incidentsAt(triggered, t)
      );
      await advanceBusiness(client, state, tickSeconds, at, counts);
      return { at, incidents: incidents.map((i) => i.kind), activeTenants: state.tenants.length, ...counts };
    });
  } catch (error) {
    // The in-memory month-to-date counts already include this tick's rolled-back usage: re-read them.
    state.usageMonth = null;
    markTenantsStale(state);
    throw error;
  }
}
