import { formatPlanValue, planValue, type PlanTargetKey } from '../../core/plan-targets.ts';
import {
  atLeast,
  below,
  fixedColor,
  neutral,
  thresholdsFor,
  within,
  type Steps,
  bargauge,
  controlRoomDashboard,
  regionHealth,
  stat,
  timeseries,
  valueText,
} from './common.ts';

/** Agent success in the rolling hour: the recording rule of the exporter's KPI rules (alerting/rules/kpis.rules.yml). */
export const AGENT_SUCCESS_ROLLING_HOUR = 'slo:sli_success:ratio_rate1h{slo="agent_success"}';

const pct = (key: PlanTargetKey) => formatPlanValue({ value: planValue(key), unit: 'ratio' });

/** The plan's three funnels (`tms_conversion_ratio{funnel}`) and their targets. */
export const FUNNELS = [
  { funnel: 'trial_to_paid', title: 'Trial→Paid', target: 'trial_to_paid_min' },
  { funnel: 'quote_to_book', title: 'Quote→Book', target: 'quote_to_book_min' },
  {
    funnel: 'invite_to_onboard',
    title: 'Invite→onboard',
    target: 'invite_to_onboard_min',
  },
] as const satisfies ReadonlyArray<{
  funnel: string;
  title: string;
  target: PlanTargetKey;
}>;

interface Kpi {
  title: string;
  expr: string;
  description: string;
  steps: Steps;
  unit?: string;
  decimals?: number;
}

/**
 * The plan's scorecard, one stat per KPI, each with its own target as the threshold (Phase 6 north star
 * and KPIs; Phase 5 where Phase 6 has no number). Values are the exporter's business gauges.
 */
export const SCORECARD: readonly Kpi[] = [
  ...FUNNELS.map((f) => ({
    title: f.title,
    expr: `max without (instance) (tms_conversion_ratio{funnel="${f.funnel}"})`,
    description: `Converted / entered, 30-day cohort. Target at least ${pct(f.target)}.`,
    steps: atLeast(f.target),
  })),
  {
    title: 'Net MRR growth (MoM)',
    expr: 'max without (instance) (tms_mrr_growth_ratio)',
    description: `Net MRR change against the same day a month ago (0.12 = +12%). Target at least +${pct('mrr_growth_mom_min')} a month.`,
    steps: atLeast('mrr_growth_mom_min'),
  },
  {
    title: 'Net revenue retention',
    expr: 'max without (instance) (tms_net_revenue_retention_ratio)',
    description:
      'MRR now of the accounts paying a month ago / their MRR then (expansion minus contraction and churn). The plan sets no NRR number: red below 100% (the existing base shrinks), green from it.',
    // 1 is where retained revenue stops shrinking: a definition, not a plan target.
    steps: [
      ['red', null],
      ['green', 1],
    ],
  },
  {
    title: 'Logo churn (monthly)',
    expr: 'max without (instance) (tms_logo_churn_ratio)',
    description: `Paying accounts of a month ago that no longer pay / those accounts. Target at most ${pct('logo_churn_monthly_max')} a month.`,
    steps: below('logo_churn_monthly_max'),
  },
  {
    title: 'ARPA uplift vs. baseline',
    expr: 'max without (instance) (tms_arpa_uplift_ratio)',
    description:
      'ARPA / the Phase 4 baseline ARPA − 1 (the baseline is configurable, by default the ARPA at the start of the data; it is drawn on the Revenue graph). Red below the baseline, green above.',
    // 0 = no change against the baseline: the plan asks for an uplift without a number.
    steps: [
      ['red', null],
      ['green', 0],
    ],
  },
  {
    title: 'Overage revenue share of MRR',
    expr: 'max without (instance) (tms_overage_revenue_share_ratio)',
    description: `Billed overage revenue / MRR. Goal ${pct('overage_revenue_share_min')}–${pct('overage_revenue_share_max')}: orange below, green inside, red above (customers paying too much overage churn).`,
    steps: within('overage_revenue_share_min', 'overage_revenue_share_max'),
  },
  {
    title: 'Pricing variance',
    expr: 'max without (instance) (tms_quote_variance_ratio)',
    description: `Mean |invoiced − quoted| / quoted over 30 days. Target at most ±${pct('pricing_variance_max')}.`,
    steps: below('pricing_variance_max'),
  },
];

/** Scorecard stats (two rows of six columns), region health and the usage meter summary beside them. */
function scorecard() {
  const kpis = SCORECARD.map((kpi, i) =>
    stat({
      id: 12 + i,
      title: kpi.title,
      description: kpi.description,
      at: [(i % 6) * 4, 10 + Math.floor(i / 6) * 4, 4, 4],
      queries: [{ expr: kpi.expr, legend: kpi.title }],
      unit: kpi.unit ?? 'percentunit',
      decimals: kpi.decimals ?? 1,
      steps: kpi.steps,
      graphMode: 'none',
    })
  );
  const next = 12 + SCORECARD.length;
  return [
    ...kpis,
    regionHealth({
      id: next,
      description: 'Health checks of each region (details on the Regions dashboard).',
      at: [12, 14, 6, 4],
    }),
    stat({
      id: next + 1,
      title: 'Usage meters (tenant-features per band)',
      description:
        'Tenant-features by usage of their included amount this period: warnings at 80% and 90%, overage billed from 100% (details on the Usage dashboard).',
      at: [18, 14, 6, 4],
      queries: [
        { expr: 'sum(max without (instance) (tms_usage_companies{band="lt80"}))', legend: '< 80%' },
        { expr: 'sum(max without (instance) (tms_usage_companies{band="80to90"}))', legend: '80–90%' },
        { expr: 'sum(max without (instance) (tms_usage_companies{band="90to100"}))', legend: '90–100%' },
        { expr: 'sum(max without (instance) (tms_usage_companies{band="over"}))', legend: '≥ 100%' },
      ],
      unit: 'none',
      decimals: 0,
      steps: neutral('green'),
      overrides: [
        { name: '80–90%', properties: [fixedColor('yellow')] },
        { name: '90–100%', properties: [fixedColor('orange')] },
        { name: '≥ 100%', properties: [fixedColor('red')] },
      ],
      graphMode: 'none',
      textMode: 'value_and_name',
    }),
  ];
}

export const executiveDashboard = () =>
  controlRoomDashboard(
    {
      uid: 'controlroom-executive',
      title: 'Control Room · Executive',
      description: "SLOs, the plan's KPI scorecard, revenue, regions, usage and release freeze at a glance.",
    },
    [
      stat({
        id: 1,
        title: 'Availability (30d)',
        description:
          'Share of non-5xx API requests over 30 days. Objective 99.95% (Phase 6 north star and the customer-facing uptime SLA): green at the objective, orange down to the earlier 99.9%, red below.',
        at: [0, 0, 6, 5],
        queries: [
          {
            expr: '1 - slo:sli_error:ratio_rate30d{slo="availability"}',
            legend: 'availability',
          },
        ],
        unit: 'percentunit',
        decimals: 3,
        min: 0,
        max: 1,
        steps: [
          ['red', null],
          ['orange', 0.999],
          ['green', planValue('availability_objective')],
        ],
      }),
      stat({
        id: 2,
        title: 'Agent success (rolling hour / 30d)',
        description: `Successful / finished agent tasks in the rolling hour (the SLO's own window) and over the 30-day budget period. Objective ${pct('agent_success_objective')} in every rolling hour (Phase 6); below ${pct('release_gate_agent_success')} the release gate blocks deploys (red).`,
        at: [6, 0, 6, 5],
        queries: [
          { expr: AGENT_SUCCESS_ROLLING_HOUR, legend: 'rolling hour' },
          {
            expr: '1 - slo:sli_error:ratio_rate30d{slo="agent_success"}',
            legend: '30 days',
          },
        ],
        textMode: 'value_and_name',
        unit: 'percentunit',
        decimals: 2,
        min: 0,
        max: 1,
        steps: [
          ['red', null],
          ['orange', planValue('release_gate_agent_success')],
          ['green', planValue('agent_success_objective')],
        ],
      }),
      stat({
        id: 3,
        title: 'Quote latency p95 (uncached, 5m)',
        description: 'SLO: 95% of uncached quotes within 0.5 s.',
        at: [12, 0, 6, 5],
        queries: [
          {
            expr: 'histogram_quantile(0.95, sum by (le) (max without (instance) (rate(tms_quote_request_duration_seconds_bucket{cached="false"}[5m]))))',
            legend: 'p95',
          },
        ],
        unit: 's',
        decimals: 2,
        steps: [
          ['green', null],
          ['orange', 0.4],
          ['red', planValue('quote_p95_uncached_seconds')],
        ],
      }),
      stat({
        id: 4,
        title: 'Release freeze',
        description: 'Error-budget release freeze state and the cause in force.',
        at: [18, 0, 6, 5],
        queries: [
          { expr: 'max without (instance) (controlroom_release_frozen)', legend: 'freeze' },
          {
            expr: 'max without (instance) (controlroom_release_freeze_reason) == 1',
            legend: '{{reason}}',
          },
        ],
        steps: [
          ['green', null],
          ['red', 1],
        ],
        mappings: [
          valueText([
            [0, 'Releases open', 'green'],
            [1, 'Releases frozen', 'red'],
          ]),
        ],
        colorMode: 'background',
        graphMode: 'none',
        textMode: 'value_and_name',
      }),
      stat({
        id: 5,
        title: 'MRR',
        at: [0, 5, 6, 5],
        queries: [{ expr: 'max without (instance) (tms_mrr_dollars)', legend: 'MRR' }],
        unit: 'currencyUSD',
        decimals: 0,
        steps: [['blue', null]],
      }),
      stat({
        id: 6,
        title: 'ARPA',
        at: [6, 5, 6, 5],
        queries: [{ expr: 'max without (instance) (tms_arpa_dollars)', legend: 'ARPA' }],
        unit: 'currencyUSD',
        decimals: 0,
        steps: [['blue', null]],
      }),
      stat({
        id: 7,
        title: 'Paying accounts',
        at: [12, 5, 6, 5],
        queries: [{ expr: 'max without (instance) (tms_paying_accounts)', legend: 'paying accounts' }],
        unit: 'none',
        decimals: 0,
        steps: [['blue', null]],
      }),
      bargauge({
        id: 8,
        title: 'Conversions (30-day cohorts)',
        description: 'Each funnel against its own plan target (red below, green from it).',
        at: [18, 5, 6, 5],
        queries: [
          {
            expr: 'max without (instance) (tms_conversion_ratio{funnel=~"trial_to_paid|quote_to_book|invite_to_onboard"})',
            legend: '{{funnel}}',
            instant: true,
          },
        ],
        unit: 'percentunit',
        decimals: 1,
        min: 0,
        max: 1,
        steps: neutral(),
        overrides: FUNNELS.map((f) => ({
          name: f.funnel,
          properties: [thresholdsFor(atLeast(f.target))],
        })),
        orientation: 'horizontal',
        displayMode: 'gradient',
      }),
      // The scorecard rows sit between the cards above and the trends below (y 10–17).
      ...scorecard(),
      timeseries({
        id: 9,
        title: 'Error budget remaining (30d), all SLOs',
        at: [0, 18, 12, 8],
        queries: [{ expr: 'slo:error_budget_remaining:ratio', legend: '{{slo}}' }],
        unit: 'percentunit',
        steps: [
          ['red', null],
          ['orange', 0],
          ['green', 1 - planValue('error_budget_freeze_fraction')],
        ],
        thresholdsStyle: 'line+area',
      }),
      timeseries({
        id: 10,
        title: 'Revenue',
        at: [12, 18, 12, 8],
        queries: [
          { expr: 'max without (instance) (tms_mrr_dollars)', legend: 'MRR' },
          { expr: 'max without (instance) (tms_arpa_dollars)', legend: 'ARPA' },
          { expr: 'max without (instance) (tms_arpa_baseline_dollars)', legend: 'ARPA baseline' },
        ],
        unit: 'currencyUSD',
        steps: [['green', null]],
        overrides: [
          {
            name: 'ARPA',
            properties: [{ id: 'custom.axisPlacement', value: 'right' }],
          },
          {
            name: 'ARPA baseline',
            properties: [
              { id: 'custom.axisPlacement', value: 'right' },
              {
                id: 'custom.lineStyle',
                value: { fill: 'dash', dash: [10, 10] },
              },
            ],
          },
        ],
      }),
      timeseries({
        id: 11,
        title: 'Conversions over time',
        at: [0, 26, 24, 7],
        queries: [
          {
            expr: 'max without (instance) (tms_conversion_ratio{funnel=~"trial_to_paid|quote_to_book|invite_to_onboard"})',
            legend: '{{funnel}}',
          },
        ],
        unit: 'percentunit',
        steps: [['green', null]],
      }),
    ]
  );
