import { audit } from '../../core/audit.ts';
import { withTransaction, type Pool } from '../../core/db.ts';
import { usageAgainstPlan } from '../../core/plan-usage.ts';
import { activeIncidents, ERROR_BURST_REGION, type Incident, type IncidentKind } from './schedule.ts';
import type { DemoIncidentName } from './incident-names.ts';
import { newUsageBatch } from './sql.ts';

/**
 * Demo incidents on demand: `controlroom demo --incident NAME` plays one now against a running demo,
 * so nobody waits for the hourly schedule. Traffic incidents are rows in controlroom.demo_incidents
 * that every demo traffic writer on the database reads at each tick (the same effects as the scheduled
 * ones, for longer); `tenant_limits` writes its usage at once.
 *
 * Each is long or strong enough for the rules as they are (nothing is shortened for the demo); what
 * fires, and when, with Prometheus's 15 s scrape and evaluation:
 * - error_burst (8 min): ~14% of all API calls fail (20% in us-east-1). The availability SLO's 1h/5m burn
 *   passes 14.4x once ~3 min of the burst are in the last hour: SLOBurnRate1h (P1 page) within ~4 min, and
 *   with it the release freeze (a P1 SLO page freezes); RegionHighErrorRate (P2, for 2m) within ~4 min.
 * - agent_failures (10 min): sync_carrier_docs hangs ~60 s and fails ~40%, the queue backs up past 60 s:
 *   SLORollingHourBelowObjective for agent_success (P2, for 5m) and the agent_queue SLO burn.
 * - slow_quotes (20 min): uncached quotes take 4x longer (~80% over 0.5 s). The latency SLO's 5% budget
 *   means its 1h page needs most of an hour slow: on a fresh Prometheus (first start) it fires within
 *   minutes, on one with an hour of normal history its budget alerts come later.
 * - tenant_limits (at once): three tenants under 80% of their included quotes this month are taken to
 *   85%, 95% and 105%: UsageAbove80Percent / 90 / UsageLimitReached after their `for: 5m`, and a
 *   notify_ops task per tenant and threshold from whichever path sees it first (the alert, or the billing
 *   tick every BILLING_TICK_SECONDS, which makes one task for the highest threshold crossed).
 */

interface TrafficIncident {
  kind: IncidentKind;
  minutes: number;
  summary: string;
}

export const TRAFFIC_INCIDENTS: Record<IncidentKind, TrafficIncident> = {
  error_burst: { kind: 'error_burst', minutes: 8, summary: 'us-east-1 answers ~20% of API calls with 5xx' },
  slow_quotes: { kind: 'slow_quotes', minutes: 20, summary: 'uncached rate quotes take 4x longer' },
  agent_failures: {
    kind: 'agent_failures',
    minutes: 10,
    summary: 'carrier-docs provider times out: sync_carrier_docs fails ~40% and the agent queue backs up',
  },
};

export { DEMO_INCIDENT_NAMES, isDemoIncidentName, type DemoIncidentName } from './incident-names.ts';

/** Shares of the included amount the three `tenant_limits` tenants are taken to. */
export const TENANT_LIMIT_TARGETS = [0.85, 0.95, 1.05] as const;
const TENANT_LIMIT_FEATURE = 'rates';

export type TriggerResult =
  | { name: DemoIncidentName; kind: IncidentKind; id: string; startsAt: Date; endsAt: Date; summary: string }
  | {
      name: 'tenant_limits';
      tenants: Array<{ companyId: string; name: string; feature: string; from: number; to: number }>;
    };

/**
 * Plays the named incident from `at`, audited as `demo.incident_triggered`. A traffic incident is a row
 * the demo writers read; tenant_limits writes the usage itself, in the same transaction as its audit
 * entry. Throws when no tenant is left under 80% for tenant_limits (every one was already taken over).
 */
export async function triggerDemoIncident(
  pool: Pool,
  name: DemoIncidentName,
  actor: string,
  at = new Date()
): Promise<TriggerResult> {
  return withTransaction(pool, 'READ COMMITTED', async (client) => {
    if (name === 'tenant_limits') {
      const usages = (await usageAgainstPlan(client, { feature: TENANT_LIMIT_FEATURE, limitedOnly: true, at }))
        .filter((u) => u.current && u.softLimit > 0 && u.ratio !== null && u.ratio < 0.8)
        .sort((a, b) => a.companyName.localeCompare(b.companyName) || a.companyId.localeCompare(b.companyId))
        .slice(0, TENANT_LIMIT_TARGETS.length);
      if (usages.length === 0)
        throw new Error(
          `no tenant is under 80% of its included ${TENANT_LIMIT_FEATURE} this month: every one has crossed already`
        );
      const batch = newUsageBatch();
      const tenants = usages.map((u, i) => {
        const to = Math.ceil(u.softLimit * TENANT_LIMIT_TARGETS[i]!);
        batch.push({ company_id: u.companyId, feature_key: TENANT_LIMIT_FEATURE, qty: to - u.used, occurred_at: at });
        return { companyId: u.companyId, name: u.companyName, feature: TENANT_LIMIT_FEATURE, from: u.used, to };
      });
      await batch.insert(client);
      await audit(client, {
        actor,
        action: 'demo.incident_triggered',
        target: 'demo/tenant_limits',
        payload: { name, tenants },
      });
      return { name, tenants };
    }
    const incident = TRAFFIC_INCIDENTS[name];
    const endsAt = new Date(at.getTime() + incident.minutes * 60_000);
    const { rows } = await client.query<{ id: string }>(
      `INSERT INTO controlroom.demo_incidents (kind, starts_at, ends_at, requested_by) VALUES ($1, $2, $3, $4) RETURNING id::text`,
      [incident.kind, at, endsAt, actor]
    );
    const id = rows[0]!.id;
    await audit(client, {
      actor,
      action: 'demo.incident_triggered',
      target: `demo_incidents/${id}`,
      payload: { name, starts_at: at, ends_at: endsAt },
    });
    return { name, kind: incident.kind, id, startsAt: at, endsAt, summary: incident.summary };
  });
}

/** How far back triggered incidents are read: a task started during one is judged by it for this long. */
const LOOKBACK_MS = 15 * 60_000;

/**
 * The triggered incidents that overlap the last LOOKBACK_MS before `at` (or later). A database without
 * the table (migrations not applied) has none: the demo still runs its schedule.
 */
export async function loadTriggeredIncidents(pool: Pool, at: Date): Promise<Incident[]> {
  try {
    const { rows } = await pool.query<{ kind: IncidentKind; starts_at: Date; ends_at: Date }>(
      `SELECT kind, starts_at, ends_at FROM controlroom.demo_incidents WHERE ends_at > $1 ORDER BY starts_at, id`,
      [new Date(at.getTime() - LOOKBACK_MS)]
    );
    return rows.map((r) => ({
      kind: r.kind,
      summary: TRAFFIC_INCIDENTS[r.kind].summary,
      startsAt: r.starts_at,
      endsAt: r.ends_at,
    }));
  } catch (error) {
    if ((error as { code?: string }).code === '42P01') return [];
    throw error;
  }
}

/** The incidents in progress at `at`: the hourly schedule's and the triggered ones, one per kind. */
export function incidentsAt(triggered: readonly Incident[], at: Date): Incident[] {
  const found = activeIncidents(at);
  for (const incident of triggered) {
    if (incident.startsAt <= at && at < incident.endsAt && !found.some((i) => i.kind === incident.kind)) {
      found.push(incident.kind === 'error_burst' ? { ...incident, region: ERROR_BURST_REGION } : incident);
    }
  }
  return found;
}
