import { planValue } from '../../core/plan-targets.ts';
import { controlRoomDashboard, neutral, stat, timeseries, type Steps } from './common.ts';

/**
 * Incident response against the plan's support SLAs (P1 < 4 h, P2 < 1 business day, P3 < 3 business
 * days), from the alert receiver's incident metrics (paged → acknowledged → resolved per alert group).
 *
 * A business day is not a fixed number of seconds (a P2 paged on Friday evening is due on Monday), so
 * the P2 and P3 thresholds on the duration panels draw a business day as 24 h: a guide, not the verdict.
 * The verdict is the receiver's own, counted in business days: `controlroom_incidents_past_sla` and
 * `controlroom_incident_sla_breaches_total` (the "past SLA" and "breaches" panels).
 */
const DAY_SECONDS = 86_400;

export const SEVERITIES = ['P1', 'P2', 'P3'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** The budget each severity's duration panel draws, in seconds (business days as 24 h, see above). */
export const SLA_BUDGET_SECONDS: Readonly<Record<Severity, number>> = {
  P1: planValue('incident_p1_seconds'),
  P2: planValue('incident_p2_business_days') * DAY_SECONDS,
  P3: planValue('incident_p3_business_days') * DAY_SECONDS,
};

const BUDGET_WORDS: Readonly<Record<Severity, string>> = {
  P1: `${planValue('incident_p1_seconds') / 3600} h`,
  P2: `${planValue('incident_p2_business_days')} business day`,
  P3: `${planValue('incident_p3_business_days')} business days`,
};

const withinBudget = (severity: Severity): Steps => [
  ['green', null],
  ['red', SLA_BUDGET_SECONDS[severity]],
];

// Every incident series is computed from the database, so every Control Room instance exports the same
// values: `max by` keeps one copy where `sum by` would count an HA pair twice.
const p95Over = (histogram: string, severity: Severity) =>
  `histogram_quantile(0.95, max by (le) (increase(${histogram}_bucket{severity="${severity}"}[$__range])))`;

function durationStat(severity: Severity, index: number) {
  return stat({
    id: 4 + index,
    title: `${severity}: time to acknowledge / resolve (p95)`,
    description:
      `95th percentile over the time range of the ${severity} incidents acknowledged and resolved in it. SLA: both within ${BUDGET_WORDS[severity]}` +
      (severity === 'P1'
        ? '.'
        : ' (drawn as 24 h a business day; the past-SLA and breach panels count business days).'),
    at: [index * 8, 4, 8, 5],
    queries: [
      {
        expr: p95Over('controlroom_incident_time_to_acknowledge_seconds', severity),
        legend: 'acknowledge',
      },
      {
        expr: p95Over('controlroom_incident_time_to_resolve_seconds', severity),
        legend: 'resolve',
      },
    ],
    unit: 's',
    decimals: 0,
    steps: withinBudget(severity),
    graphMode: 'none',
    textMode: 'value_and_name',
  });
}

const meanOver1d = (histogram: string) =>
  `max by (severity) (increase(${histogram}_sum[1d])) / max by (severity) (increase(${histogram}_count[1d]))`;

export const incidentsDashboard = () =>
  controlRoomDashboard(
    {
      uid: 'controlroom-incidents',
      title: 'Control Room · Incident response',
      description:
        'Time to acknowledge and resolve pages by severity against the support SLAs (P1 4 h, P2 1 business day, P3 3 business days), breaches and open incidents.',
      from: 'now-7d',
    },
    [
      stat({
        id: 1,
        title: 'Open incidents',
        description: 'Alert groups paged and not yet resolved, by severity.',
        at: [0, 0, 8, 4],
        queries: [
          {
            expr: 'max by (severity) (controlroom_incidents_open)',
            legend: '{{severity}}',
          },
        ],
        unit: 'none',
        decimals: 0,
        steps: [
          ['green', null],
          ['orange', 1],
        ],
        graphMode: 'none',
        textMode: 'value_and_name',
      }),
      stat({
        id: 2,
        title: 'Open past their SLA',
        description:
          'Open incidents older than their budget (business days Mon–Fri in the configured time zone for P2 and P3); IncidentPastSLA fires for them.',
        at: [8, 0, 8, 4],
        queries: [
          {
            expr: 'max by (severity) (controlroom_incidents_past_sla)',
            legend: '{{severity}}',
          },
        ],
        unit: 'none',
        decimals: 0,
        steps: [
          ['green', null],
          ['red', 1],
        ],
        colorMode: 'background',
        graphMode: 'none',
        textMode: 'value_and_name',
      }),
      stat({
        id: 3,
        title: 'SLA breaches (time range)',
        description: 'Acknowledgements and resolutions that came after their budget, by severity and stage.',
        at: [16, 0, 8, 4],
        queries: [
          {
            expr: 'max by (severity, stage) (increase(controlroom_incident_sla_breaches_total[$__range]))',
            legend: '{{severity}} {{stage}}',
          },
        ],
        unit: 'none',
        decimals: 0,
        steps: [
          ['green', null],
          ['red', 1],
        ],
        graphMode: 'none',
        textMode: 'value_and_name',
      }),
      ...SEVERITIES.map(durationStat),
      timeseries({
        id: 7,
        title: 'Open and past-SLA incidents',
        at: [0, 9, 12, 8],
        queries: [
          {
            expr: 'max by (severity) (controlroom_incidents_open)',
            legend: 'open {{severity}}',
          },
          {
            expr: 'max by (severity) (controlroom_incidents_past_sla)',
            legend: 'past SLA {{severity}}',
          },
        ],
        unit: 'none',
        decimals: 0,
        min: 0,
        steps: neutral('green'),
      }),
      timeseries({
        id: 8,
        title: 'Mean time to acknowledge and resolve (rolling day)',
        description: 'Mean over the incidents acknowledged / resolved in the preceding 24 h, by severity.',
        at: [12, 9, 12, 8],
        queries: [
          {
            expr: meanOver1d('controlroom_incident_time_to_acknowledge_seconds'),
            legend: 'acknowledge {{severity}}',
          },
          {
            expr: meanOver1d('controlroom_incident_time_to_resolve_seconds'),
            legend: 'resolve {{severity}}',
          },
        ],
        unit: 's',
        min: 0,
        // Severities share the graph and each has its own budget: the budgets are on the stats above.
        steps: neutral('green'),
      }),
      timeseries({
        id: 9,
        title: 'SLA breaches',
        description: 'Breaches per hour, by severity and stage.',
        at: [0, 17, 24, 7],
        queries: [
          {
            expr: 'max by (severity, stage) (increase(controlroom_incident_sla_breaches_total[1h]))',
            legend: '{{severity}} {{stage}}',
          },
        ],
        unit: 'none',
        min: 0,
        steps: neutral('green'),
        drawStyle: 'bars',
        fillOpacity: 60,
        stacked: true,
      }),
    ]
  );
