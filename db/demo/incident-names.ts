/**
 * The incidents `controlroom demo --incident NAME` can play, with what each does: dependency-free, so
 * the CLI lists them in `--help` and checks a name without loading any database code. db/demo/incidents.ts
 * plays them (and explains the numbers).
 */
export const DEMO_INCIDENTS = {
  error_burst: '8 min: ~20% 5xx in us-east-1; availability page (SLOBurnRate1h) and release freeze within ~4 min',
  slow_quotes: '20 min: uncached quotes 4x slower; quote latency SLO alerts',
  agent_failures: '10 min: sync_carrier_docs hangs and fails ~40%; agent success and queue SLO alerts',
  tenant_limits:
    'at once: three tenants to 85/95/105% of their included quotes; usage alerts after 5 min; notify_ops tasks from them or the billing tick',
} as const;

export type DemoIncidentName = keyof typeof DEMO_INCIDENTS;
export const DEMO_INCIDENT_NAMES = Object.keys(DEMO_INCIDENTS) as DemoIncidentName[];
export const isDemoIncidentName = (name: string): name is DemoIncidentName => Object.hasOwn(DEMO_INCIDENTS, name);

/** One line per incident, for `--help` and the unknown-name message. */
export const demoIncidentList = (): string =>
  DEMO_INCIDENT_NAMES.map((name) => `  ${name.padEnd(15)} ${DEMO_INCIDENTS[name]}`).join('\n');
