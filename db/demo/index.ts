/**
 * Demo traffic generator: realistic, continuous TMS activity (tenants, quotes, API traffic, usage, agent
 * work and scheduled incidents) so dashboards and alerts have something true to show.
 */
export { seedDemo } from './seed.ts';
export { runDemoTick } from './tick.ts';
export { startDemoTraffic } from './traffic.ts';
export { createDemoState, resolveOptions, type DemoOptions, type DemoState } from './state.ts';
export { DEMO_TABLES, type DemoTable, type TickSummary } from './summary.ts';
export {
  activeIncidents,
  diurnalFactor,
  INCIDENT_SCHEDULE,
  ERROR_BURST_REGION,
  type Incident,
  type IncidentKind,
} from './schedule.ts';
export { OVERLAND_EXPRESS } from './names.ts';
export { OVERLAND_RUNAWAY_PER_SECOND } from './tick-traffic.ts';
export { OVERLAND_SEEDED_SHARE } from './seed-usage.ts';
