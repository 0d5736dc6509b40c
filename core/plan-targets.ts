/**
 * The TMS product plan's numbers that Control Room enforces, each in exactly one place.
 *
 * The SLO spec (alerting/slos.yaml, as `plan.<key>`), the rule generator, the promtool tests' comments,
 * the dashboard threshold check and the README's "Plan targets" table all read these entries; a test
 * (core/plan-targets.test.ts) fails when the README table and this list disagree, and the generated rules
 * are checked against the spec, so changing a number here and regenerating is the whole change.
 *
 * Where two plan phases give different numbers, the later one stands (Phase 6 over 5 over 4); `phase`
 * names the phase the number is taken from and `source` the section, so a reviewer can check it.
 *
 * To add a target: append an entry (keys are stable identifiers, referenced from code and specs as
 * `planValue('<key>')` or `plan.<key>`; the test fails for a target nothing reads) and the matching row to
 * the README table (the test prints the expected row when it is missing).
 */

export type PlanPhase = 'Phase 4' | 'Phase 5' | 'Phase 6';

/**
 * How a value is written in the README: a ratio as a percentage, seconds as ms or s, a count as is,
 * dollars with $, and a switch (a rule without a number, 1 = enforced) as on or off.
 */
export type PlanUnit = 'ratio' | 'seconds' | 'count' | 'dollars' | 'switch';

export interface PlanTarget {
  /** Stable identifier, e.g. referenced as `plan.availability_objective` in alerting/slos.yaml. */
  key: string;
  /** What the plan asks for, in words. */
  target: string;
  value: number;
  unit: PlanUnit;
  /** Where Control Room enforces it (Markdown, as the README shows it). */
  enforcedIn: string;
  phase: PlanPhase;
  /** The plan section the number comes from. */
  source: string;
}

export const PLAN_TARGETS = [
  {
    key: 'availability_objective',
    target: 'API availability (non-5xx), 30 days; also the customer-facing uptime SLA',
    value: 0.9995,
    unit: 'ratio',
    enforcedIn: '`availability` SLO: burn-rate pages and tickets, `ErrorBudgetHalfSpent` (freeze)',
    phase: 'Phase 6',
    source: 'North-star targets; customer-facing SLAs',
  },
  {
    key: 'agent_success_objective',
    target: 'Agent task success in every rolling hour (30-day budget kept too)',
    value: 0.99,
    unit: 'ratio',
    enforcedIn: '`agent_success` SLO: `SLORollingHourBelowObjective`, burn-rate alerts, `ErrorBudgetHalfSpent` (freeze)',
    phase: 'Phase 6',
    source: 'North-star targets',
  },
  {
    key: 'quote_p95_uncached_seconds',
    target: 'Uncached quote latency p95',
    value: 0.5,
    unit: 'seconds',
    enforcedIn: '`quote_latency` SLO (95% within the bound)',
    phase: 'Phase 5',
    source: 'Workstream B KPIs',
  },
  {
    key: 'quote_p95_cached_seconds',
    target: 'Cached quote latency p95',
    value: 0.2,
    unit: 'seconds',
    enforcedIn: '`quote_latency_cached` SLO (95% within the bound)',
    phase: 'Phase 5',
    source: 'Workstream B KPIs',
  },
  {
    key: 'quote_p95_failover_seconds',
    target: 'Quote latency p95 while a region cutover is in progress',
    value: 0.6,
    unit: 'seconds',
    enforcedIn: '`quote_latency_failover` SLO, counted only while `tms_region_cutover_in_progress` is 1',
    phase: 'Phase 6',
    source: 'Multi-region acceptance tests',
  },
  {
    key: 'quote_p95_quantile',
    target: 'Share of quotes a p95 bound covers (the latency SLOs\' objective)',
    value: 0.95,
    unit: 'ratio',
    enforcedIn: 'objective of the three quote latency SLOs',
    phase: 'Phase 5',
    source: 'Workstream B KPIs: p95',
  },
  {
    key: 'agent_queue_oldest_seconds',
    target: 'Agent queue: the oldest queued task is younger than',
    value: 60,
    unit: 'seconds',
    enforcedIn: '`agent_queue` SLO (time slices with the oldest task ≥ the bound are bad)',
    phase: 'Phase 5',
    source: 'Workstream B performance & capacity',
  },
  {
    key: 'release_gate_agent_success',
    target: 'Release gate: agent success in the last hour at least (unreadable blocks too)',
    value: 0.98,
    unit: 'ratio',
    enforcedIn: '`ReleaseGateAgentSuccess` and `ReleaseGateAgentSuccessUnreadable` → release freeze (`release_gate`)',
    phase: 'Phase 5',
    source: 'Release freeze on SLO breach',
  },
  {
    key: 'release_gate_active_region_down',
    target: 'Release gate: no deploy while the active region fails its health checks',
    value: 1,
    unit: 'switch',
    enforcedIn: '`ActiveRegionDown` → release freeze (`active_region_down`)',
    phase: 'Phase 5',
    source: 'Release freeze rules: health check integration',
  },
  {
    key: 'error_budget_freeze_fraction',
    target: 'Release freeze when this much of a 30-day error budget is spent',
    value: 0.5,
    unit: 'ratio',
    enforcedIn: '`ErrorBudgetHalfSpent` → release freeze (`error_budget`)',
    phase: 'Phase 4',
    source: 'Error budget policy',
  },
] as const satisfies readonly PlanTarget[];

export type PlanTargetKey = (typeof PLAN_TARGETS)[number]['key'];

const byKey = new Map<string, PlanTarget>(PLAN_TARGETS.map((t) => [t.key, t]));

/** The value of a target; throws for an unknown key (a typo in a spec must not read as 0). */
export function planValue(key: PlanTargetKey | string): number {
  const target = byKey.get(key);
  if (!target) throw new Error(`unknown plan target "${key}" (known: ${[...byKey.keys()].join(', ')})`);
  return target.value;
}

export const isPlanTargetKey = (key: string): key is PlanTargetKey => byKey.has(key);

/** A number as Prometheus and people write it: no float noise (0.9995, not 0.99950000000000006). */
export const plainNumber = (x: number) => String(Number(x.toPrecision(12)));

export function formatPlanValue(t: Pick<PlanTarget, 'value' | 'unit'>): string {
  switch (t.unit) {
    case 'ratio':
      return `${plainNumber(t.value * 100)}%`;
    case 'seconds':
      return t.value < 1 ? `${plainNumber(t.value * 1000)} ms` : `${plainNumber(t.value)} s`;
    case 'dollars':
      return `$${plainNumber(t.value)}`;
    case 'count':
      return plainNumber(t.value);
    case 'switch':
      return t.value === 1 ? 'on' : 'off';
  }
}

/** The README "Plan targets" table row of a target, exactly as the README must hold it. */
export const readmeRow = (t: PlanTarget) =>
  `| \`${t.key}\` | ${t.target} | ${formatPlanValue(t)} | ${t.enforcedIn} | ${t.phase} (${t.source}) |`;

export const README_TABLE_HEADER = ['| key | target | value | enforced in | phase (plan section) |', '| --- | --- | --- | --- | --- |'];
