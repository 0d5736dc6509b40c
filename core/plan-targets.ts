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
 * How a value is written in the README: a ratio as a percentage, seconds as ms, s or whole hours, a count
 * as is, dollars with $, a switch (a rule without a number, 1 = enforced) as on or off, and business days
 * (Mon–Fri, not a fixed number of seconds) as such.
 */
export type PlanUnit = 'ratio' | 'seconds' | 'count' | 'dollars' | 'switch' | 'business_days';

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
    enforcedIn:
      '`agent_success` SLO: `SLORollingHourBelowObjective`, burn-rate alerts, `ErrorBudgetHalfSpent` (freeze)',
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
    target: "Share of quotes a p95 bound covers (the latency SLOs' objective)",
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
  {
    key: 'starter_price_monthly',
    target: 'Starter plan price, a month',
    value: 99,
    unit: 'dollars',
    enforcedIn: 'plans seed (migration `1700000000009`), checked by `db/plan-catalog.ts`',
    phase: 'Phase 4',
    source: 'Plans and limits',
  },
  {
    key: 'starter_price_yearly',
    target: 'Starter plan price, a year',
    value: 990,
    unit: 'dollars',
    enforcedIn: 'plans seed (migration `1700000000009`), checked by `db/plan-catalog.ts`',
    phase: 'Phase 4',
    source: 'Plans and limits',
  },
  {
    key: 'pro_price_monthly',
    target: 'Pro plan price, a month',
    value: 299,
    unit: 'dollars',
    enforcedIn: 'plans seed (migration `1700000000009`), checked by `db/plan-catalog.ts`',
    phase: 'Phase 4',
    source: 'Plans and limits',
  },
  {
    key: 'pro_price_yearly',
    target: 'Pro plan price, a year',
    value: 2990,
    unit: 'dollars',
    enforcedIn: 'plans seed (migration `1700000000009`), checked by `db/plan-catalog.ts`',
    phase: 'Phase 4',
    source: 'Plans and limits',
  },
  {
    key: 'enterprise_price_monthly',
    target: 'Enterprise plan price, a month',
    value: 999,
    unit: 'dollars',
    enforcedIn: 'plans seed (migration `1700000000009`), checked by `db/plan-catalog.ts`',
    phase: 'Phase 4',
    source: 'Plans and limits',
  },
  {
    key: 'enterprise_price_yearly',
    target: 'Enterprise plan price, a year',
    value: 9990,
    unit: 'dollars',
    enforcedIn: 'plans seed (migration `1700000000009`), checked by `db/plan-catalog.ts`',
    phase: 'Phase 4',
    source: 'Plans and limits',
  },
  {
    key: 'starter_rates_included',
    target: 'Starter `rates` (quotes per month): included (overage billed above it; warnings measured against it)',
    value: 50,
    unit: 'count',
    enforcedIn: '`plan_features` seed (migration `1700000000009`), `core/plan-usage.ts`',
    phase: 'Phase 6',
    source: 'Meters & limits (Phase 4 numbers)',
  },
  {
    key: 'starter_rates_hard',
    target: 'Starter `rates` (quotes per month): hard limit (blocks: 402/429 with request increase)',
    value: 100,
    unit: 'count',
    enforcedIn: '`plan_features` seed (migration `1700000000009`), `core/plan-usage.ts`',
    phase: 'Phase 6',
    source: 'Meters & limits (Phase 4 numbers)',
  },
  {
    key: 'starter_directory_included',
    target: 'Starter `directory` (invites per month): included (overage billed above it; warnings measured against it)',
    value: 25,
    unit: 'count',
    enforcedIn: '`plan_features` seed (migration `1700000000009`), `core/plan-usage.ts`',
    phase: 'Phase 6',
    source: 'Meters & limits (Phase 4 numbers)',
  },
  {
    key: 'starter_directory_hard',
    target: 'Starter `directory` (invites per month): hard limit (blocks: 402/429 with request increase)',
    value: 50,
    unit: 'count',
    enforcedIn: '`plan_features` seed (migration `1700000000009`), `core/plan-usage.ts`',
    phase: 'Phase 6',
    source: 'Meters & limits (Phase 4 numbers)',
  },
  {
    key: 'pro_rates_included',
    target: 'Pro `rates` (quotes per month): included (overage billed above it; warnings measured against it)',
    value: 500,
    unit: 'count',
    enforcedIn: '`plan_features` seed (migration `1700000000009`), `core/plan-usage.ts`',
    phase: 'Phase 6',
    source: 'Meters & limits (Phase 4 numbers)',
  },
  {
    key: 'pro_rates_hard',
    target: 'Pro `rates` (quotes per month): hard limit (blocks: 402/429 with request increase)',
    value: 1000,
    unit: 'count',
    enforcedIn: '`plan_features` seed (migration `1700000000009`), `core/plan-usage.ts`',
    phase: 'Phase 6',
    source: 'Meters & limits (Phase 4 numbers)',
  },
  {
    key: 'pro_directory_included',
    target: 'Pro `directory` (invites per month): included (overage billed above it; warnings measured against it)',
    value: 250,
    unit: 'count',
    enforcedIn: '`plan_features` seed (migration `1700000000009`), `core/plan-usage.ts`',
    phase: 'Phase 6',
    source: 'Meters & limits (Phase 4 numbers)',
  },
  {
    key: 'pro_directory_hard',
    target: 'Pro `directory` (invites per month): hard limit (blocks: 402/429 with request increase)',
    value: 500,
    unit: 'count',
    enforcedIn: '`plan_features` seed (migration `1700000000009`), `core/plan-usage.ts`',
    phase: 'Phase 6',
    source: 'Meters & limits (Phase 4 numbers)',
  },
  {
    key: 'pro_bulk_rating_included',
    target: 'Pro `bulk_rating` (bulk jobs per day): included (overage billed above it; warnings measured against it)',
    value: 5,
    unit: 'count',
    enforcedIn: '`plan_features` seed (migration `1700000000009`), `core/plan-usage.ts`',
    phase: 'Phase 6',
    source: 'Meters & limits (Phase 4 numbers)',
  },
  {
    key: 'pro_bulk_rating_hard',
    target: 'Pro `bulk_rating` (bulk jobs per day): hard limit (blocks: 402/429 with request increase)',
    value: 10,
    unit: 'count',
    enforcedIn: '`plan_features` seed (migration `1700000000009`), `core/plan-usage.ts`',
    phase: 'Phase 6',
    source: 'Meters & limits (Phase 4 numbers)',
  },
  {
    key: 'pro_api_access_included',
    target: 'Pro `api_access` (API calls per day): included (overage billed above it; warnings measured against it)',
    value: 5000,
    unit: 'count',
    enforcedIn: '`plan_features` seed (migration `1700000000009`), `core/plan-usage.ts`',
    phase: 'Phase 6',
    source: 'Meters & limits (Phase 4 numbers)',
  },
  {
    key: 'pro_api_access_hard',
    target: 'Pro `api_access` (API calls per day): hard limit (blocks: 402/429 with request increase)',
    value: 10000,
    unit: 'count',
    enforcedIn: '`plan_features` seed (migration `1700000000009`), `core/plan-usage.ts`',
    phase: 'Phase 6',
    source: 'Meters & limits (Phase 4 numbers)',
  },
  {
    key: 'enterprise_metered_limit',
    target: 'Enterprise `rates`, `directory`, `bulk_rating` and `api_access` (hard and included)',
    value: -1,
    unit: 'count',
    enforcedIn: '`plan_features` seed (migration `1700000000009`), `core/plan-usage.ts` (−1 = unlimited)',
    phase: 'Phase 4',
    source: 'Plans and limits',
  },
  {
    key: 'usage_warning_first',
    target: 'First usage warning, share of the included amount',
    value: 0.8,
    unit: 'ratio',
    enforcedIn: '`core/plan-usage.ts` thresholds: billing notices, `UsageAbove80Percent` → `notify_ops`',
    phase: 'Phase 6',
    source: 'Risk 6: warnings at 80/90/100%',
  },
  {
    key: 'usage_warning_second',
    target: 'Second usage warning, share of the included amount',
    value: 0.9,
    unit: 'ratio',
    enforcedIn: '`core/plan-usage.ts` thresholds: billing notices, `UsageAbove90Percent` → `notify_ops`',
    phase: 'Phase 6',
    source: 'Risk 6: warnings at 80/90/100%',
  },
  {
    key: 'usage_billing_starts',
    target: 'Included amount used up: last warning, overage billing starts',
    value: 1,
    unit: 'ratio',
    enforcedIn:
      '`core/plan-usage.ts` thresholds and overage: billing notices and meter, `UsageLimitReached` → `notify_ops`',
    phase: 'Phase 6',
    source: 'Risk 6: warnings at 80/90/100%',
  },
  {
    key: 'trial_to_paid_min',
    target: 'Trial→Paid conversion (30-day cohort) at least',
    value: 0.25,
    unit: 'ratio',
    enforcedIn: 'executive dashboard: Trial→Paid scorecard threshold (`tms_conversion_ratio{funnel="trial_to_paid"}`)',
    phase: 'Phase 6',
    source: 'North-star targets: Growth',
  },
  {
    key: 'quote_to_book_min',
    target: 'Quote→Book conversion (30-day cohort) at least',
    value: 0.28,
    unit: 'ratio',
    enforcedIn: 'executive dashboard: Quote→Book scorecard threshold (`tms_conversion_ratio{funnel="quote_to_book"}`)',
    phase: 'Phase 6',
    source: 'North-star targets: Product',
  },
  {
    key: 'invite_to_onboard_min',
    target: 'Directory invite→onboard conversion (30-day cohort) at least',
    value: 0.25,
    unit: 'ratio',
    enforcedIn:
      'executive dashboard: invite→onboard scorecard threshold (`tms_conversion_ratio{funnel="invite_to_onboard"}`)',
    phase: 'Phase 6',
    source: 'North-star targets: Product',
  },
  {
    key: 'mrr_growth_mom_min',
    target: 'Net MRR growth month over month at least',
    value: 0.12,
    unit: 'ratio',
    enforcedIn: 'executive dashboard: net MRR growth scorecard threshold (`tms_mrr_growth_ratio`)',
    phase: 'Phase 6',
    source: 'North-star targets: Growth',
  },
  {
    key: 'logo_churn_monthly_max',
    target: 'Logo churn a month at most',
    value: 0.05,
    unit: 'ratio',
    enforcedIn: 'executive dashboard: logo churn scorecard threshold (`tms_logo_churn_ratio`)',
    phase: 'Phase 5',
    source: 'Workstream C KPIs: churn rate',
  },
  {
    key: 'overage_revenue_share_min',
    target: 'Overage revenue share of MRR: bottom of the goal band',
    value: 0.08,
    unit: 'ratio',
    enforcedIn: 'executive dashboard: overage revenue share scorecard threshold (`tms_overage_revenue_share_ratio`)',
    phase: 'Phase 6',
    source: 'Monetization at scale: KPIs',
  },
  {
    key: 'overage_revenue_share_max',
    target: 'Overage revenue share of MRR: top of the goal band',
    value: 0.12,
    unit: 'ratio',
    enforcedIn: 'executive dashboard: overage revenue share scorecard threshold (`tms_overage_revenue_share_ratio`)',
    phase: 'Phase 6',
    source: 'Monetization at scale: KPIs',
  },
  {
    key: 'pricing_variance_max',
    target: 'Pricing variance (mean \\|invoiced − quoted\\| / quoted) at most',
    value: 0.08,
    unit: 'ratio',
    enforcedIn: 'executive dashboard: pricing variance scorecard threshold (`tms_quote_variance_ratio`)',
    phase: 'Phase 5',
    source: 'Workstream D KPIs: pricing variance',
  },
  {
    key: 'incident_p1_seconds',
    target: 'P1 incidents acknowledged and resolved within',
    value: 14400,
    unit: 'seconds',
    enforcedIn:
      '`alerting/incidents/sla.ts` deadlines (around the clock): `controlroom_incident_sla_breaches_total`, `IncidentPastSLA` (P1 page); Incident response dashboard: P1 time-to-acknowledge and time-to-resolve thresholds',
    phase: 'Phase 6',
    source: 'Customer-facing SLAs: support',
  },
  {
    key: 'incident_p2_business_days',
    target: 'P2 incidents acknowledged and resolved within (Mon–Fri in `INCIDENT_SLA_TIME_ZONE`)',
    value: 1,
    unit: 'business_days',
    enforcedIn:
      '`alerting/incidents/sla.ts` deadlines (business days): `controlroom_incident_sla_breaches_total`, `IncidentPastSLA` (P2); Incident response dashboard: P2 thresholds (drawn as 24 h a business day)',
    phase: 'Phase 6',
    source: 'Customer-facing SLAs: support',
  },
  {
    key: 'incident_p3_business_days',
    target: 'P3 incidents acknowledged and resolved within (Mon–Fri in `INCIDENT_SLA_TIME_ZONE`)',
    value: 3,
    unit: 'business_days',
    enforcedIn:
      '`alerting/incidents/sla.ts` deadlines (business days): `controlroom_incident_sla_breaches_total`, `IncidentPastSLA` (P3); Incident response dashboard: P3 thresholds (drawn as 24 h a business day)',
    phase: 'Phase 6',
    source: 'Customer-facing SLAs: support',
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
      if (t.value < 1) return `${plainNumber(t.value * 1000)} ms`;
      return t.value >= 3600 && t.value % 3600 === 0 ? `${plainNumber(t.value / 3600)} h` : `${plainNumber(t.value)} s`;
    case 'dollars':
      return `$${plainNumber(t.value)}`;
    case 'count':
      // −1 is how the plans table says unlimited.
      return t.value < 0 ? 'unlimited' : plainNumber(t.value);
    case 'switch':
      return t.value === 1 ? 'on' : 'off';
    case 'business_days':
      return `${plainNumber(t.value)} business day${t.value === 1 ? '' : 's'}`;
  }
}

/** The README "Plan targets" table row of a target, exactly as the README must hold it. */
export const readmeRow = (t: PlanTarget) =>
  `| \`${t.key}\` | ${t.target} | ${formatPlanValue(t)} | ${t.enforcedIn} | ${t.phase} (${t.source}) |`;

export const README_TABLE_HEADER = [
  '| key | target | value | enforced in | phase (plan section) |',
  '| --- | --- | --- | --- | --- |',
];
