import type { IncidentKind } from './schedule.ts';

export const DEMO_TABLES = [
  'api_requests',
  'quote_requests',
  'usage_events',
  'agent_tasks',
  'quotes',
  'invoices',
  'directory_companies',
  'directory_docs',
  'companies',
  'org_entitlements',
] as const;
export type DemoTable = (typeof DEMO_TABLES)[number];

export interface TickCounts {
  inserted: Record<DemoTable, number>;
  updated: Record<DemoTable, number>;
}

/** What one tick wrote, for logs and tests. */
export interface TickSummary extends TickCounts {
  at: Date;
  incidents: IncidentKind[];
  /** Tenants that could generate traffic in this tick. */
  activeTenants: number;
}

export function emptyCounts(): TickCounts {
  const zero = () => Object.fromEntries(DEMO_TABLES.map((t) => [t, 0])) as Record<DemoTable, number>;
  return { inserted: zero(), updated: zero() };
}

/** Only the non-zero counts: a compact log line. */
export function compactCounts(counts: Record<DemoTable, number>): Partial<Record<DemoTable, number>> {
  return Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0));
}
