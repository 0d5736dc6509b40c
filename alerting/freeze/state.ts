import type { Pool, PoolClient } from '../../core/db.ts';
import { formatPlanValue, planValue } from '../../core/plan-targets.ts';
import type { FreezeCause } from '../freeze-cause.ts';
import { ACTIVE_REGION_DOWN } from './triggers.ts';

export { FREEZE_CAUSES, type FreezeCause } from '../freeze-cause.ts';

export interface FreezeTrigger {
  alertname: string;
  slo: string | null;
  severity: string | null;
  firing: boolean;
  started_at: Date;
  resolved_at: Date | null;
  /** The alert's labels as last received (region, gate, ...). */
  labels: Record<string, string>;
}

export interface FreezeAction {
  id: string;
  kind: 'freeze' | 'override';
  reason: string;
  actor: string;
  created_at: Date;
  expires_at: Date | null;
}

export interface FreezeDecision {
  frozen: boolean;
  /** What decides the state: the strongest reason in force. */
  cause: FreezeCause;
  reason: string;
  triggers: FreezeTrigger[];
  manual: FreezeAction[];
  override: FreezeAction | null;
  /** When the decision changes by itself (a quiet period or an expiry ends); null when nothing is timed. */
  nextChangeAt: Date | null;
}

export interface FreezePolicy {
  quietPeriodSeconds: number;
}

const describeTrigger = (t: FreezeTrigger) => {
  const about = t.slo ?? t.labels.region ?? null;
  return `${t.alertname}${about ? ` (${about})` : ''}`;
};
const isActiveRegionDown = (t: FreezeTrigger) => t.alertname === ACTIVE_REGION_DOWN;
const isReleaseGate = (t: FreezeTrigger) => t.labels.gate === 'release';
const gateRatio = () => formatPlanValue({ value: planValue('release_gate_agent_success'), unit: 'ratio' });

/** The reason of the release gate: below the gate, or unreadable (the gate fails closed). */
function releaseGateReason(gates: readonly FreezeTrigger[]): string {
  const unreadable = gates.filter((t) => t.alertname.endsWith('Unreadable'));
  const low = gates.filter((t) => !t.alertname.endsWith('Unreadable'));
  const parts = [
    ...low.map((t) => `${t.slo ?? 'the SLI'} in the last hour is below ${gateRatio()} (${t.alertname})`),
    ...unreadable.map(
      (t) => `${t.slo ?? 'the SLI'} in the last hour cannot be read, so the gate fails closed (${t.alertname})`
    ),
  ];
  return `Release gate: ${parts.join('; ')}`;
}
const iso = (d: Date) => d.toISOString().replace('.000Z', 'Z');

/**
 * The freeze policy as a pure function of what is in force at `now`:
 * - frozen while a trigger fires (in order of precedence for the cause: ActiveRegionDown, the plan's
 *   release gate, ErrorBudgetHalfSpent, a P1 SLO page), and for the quiet period after the last one
 *   resolved (so a flapping alert does not open and close the gate);
 * - a manual freeze holds until ended or expired;
 * - an override (always with an expiry) lifts an alert-driven freeze, not a manual one.
 */
export function decideFreeze(
  triggers: readonly FreezeTrigger[],
  actions: readonly FreezeAction[],
  policy: FreezePolicy,
  now: Date
): FreezeDecision {
  const quietMs = policy.quietPeriodSeconds * 1000;
  const firing = triggers.filter((t) => t.firing);
  const quieting = triggers.filter(
    (t) => !t.firing && t.resolved_at && t.resolved_at.getTime() + quietMs > now.getTime()
  );
  const live = (a: FreezeAction) => !a.expires_at || a.expires_at > now;
  const manual = actions.filter((a) => a.kind === 'freeze' && live(a));
  const override =
    actions.filter((a) => a.kind === 'override' && live(a)).sort((a, b) => +b.created_at - +a.created_at)[0] ?? null;

  const timed = [
    ...quieting.map((t) => new Date(t.resolved_at!.getTime() + quietMs)),
    ...manual.flatMap((a) => (a.expires_at ? [a.expires_at] : [])),
    ...(override?.expires_at ? [override.expires_at] : []),
  ];
  const nextChangeAt = timed.length ? new Date(Math.min(...timed.map((d) => d.getTime()))) : null;
  const base = { triggers: [...firing, ...quieting], manual, override, nextChangeAt };

  if (manual.length > 0) {
    const first = manual[0]!;
    return { ...base, frozen: true, cause: 'manual', reason: `Manual freeze by ${first.actor}: ${first.reason}` };
  }
  const alertDriven = firing.length > 0 || quieting.length > 0;
  if (alertDriven && override) {
    return {
      ...base,
      frozen: false,
      cause: 'override',
      reason: `Override by ${override.actor} until ${iso(override.expires_at!)}: ${override.reason}`,
    };
  }
  const regionDown = firing.filter(isActiveRegionDown);
  if (regionDown.length > 0) {
    const regions = regionDown.map((t) => t.labels.region ?? '?').join(', ');
    return {
      ...base,
      frozen: true,
      cause: 'active_region_down',
      reason: `Active region ${regions} is down: no deploys while the TMS runs degraded (${ACTIVE_REGION_DOWN})`,
    };
  }
  const gates = firing.filter(isReleaseGate);
  if (gates.length > 0) return { ...base, frozen: true, cause: 'release_gate', reason: releaseGateReason(gates) };
  const budget = firing.find((t) => t.alertname === 'ErrorBudgetHalfSpent');
  if (budget)
    return {
      ...base,
      frozen: true,
      cause: 'error_budget',
      reason: `More than half of the error budget is spent: ${describeTrigger(budget)}`,
    };
  if (firing.length > 0) {
    return {
      ...base,
      frozen: true,
      cause: 'slo_page',
      reason: `P1 SLO page firing: ${firing.map(describeTrigger).join(', ')}`,
    };
  }
  if (quieting.length > 0) {
    return {
      ...base,
      frozen: true,
      cause: 'quiet_period',
      reason: `Resolved; quiet period until ${iso(nextChangeAt!)} (${quieting.map(describeTrigger).join(', ')})`,
    };
  }
  return { ...base, frozen: false, cause: 'none', reason: 'No release freeze' };
}

export async function loadDecision(db: Pool | PoolClient, policy: FreezePolicy): Promise<FreezeDecision> {
  const [now, triggers, actions] = await Promise.all([
    db.query<{ now: Date }>(`SELECT now() AS now`),
    db.query<FreezeTrigger>(
      `SELECT alertname, slo, severity, firing, started_at, resolved_at, labels FROM controlroom.freeze_triggers ORDER BY started_at, alertname`
    ),
    db.query<FreezeAction>(
      `SELECT id, kind, reason, actor, created_at, expires_at FROM controlroom.freeze_actions
        WHERE ended_at IS NULL ORDER BY created_at`
    ),
  ]);
  return decideFreeze(triggers.rows, actions.rows, policy, now.rows[0]!.now);
}

/** The status a pull request should carry: exception labels let P0 and security fixes through a freeze. */
export function pullRequestVerdict(
  decision: FreezeDecision,
  labels: readonly string[],
  exceptionLabels: readonly string[]
) {
  if (!decision.frozen)
    return {
      state: 'success' as const,
      description: decision.cause === 'override' ? 'Release freeze overridden' : 'No release freeze',
    };
  const exempt = labels.find((l) => exceptionLabels.includes(l));
  if (exempt) return { state: 'success' as const, description: `Release freeze: exempt by label ${exempt}` };
  // GitHub truncates status descriptions at 140 characters.
  return { state: 'failure' as const, description: `Release freeze: ${decision.reason}`.slice(0, 140) };
}
