import { formatPlanValue, planValue } from '../../core/plan-targets.ts';
import { below, controlRoomDashboard, neutral, stat, timeseries } from './common.ts';

/**
 * Pricing-model drift (the plan's top risk): per model version and role (active | candidate), the lanes
 * rated, the share flagged `anomaly` (the candidate's price moved more than ±10% from the active one's),
 * the share sent to `needs_review`, the mean price per mile, and the candidate's traffic share. The
 * PricingCandidateAnomalies alert fires when the candidate's anomaly share over the last hour passes its
 * configured threshold with enough lanes; the Pricing page of the app is where an Admin acts on it.
 */
const BY = 'model_version, role';
const LEGEND = '{{model_version}} ({{role}})';

/** A share of the rated lanes over the last hour, per model version and role. */
const shareOfRated = (counter: string) =>
  `sum by (${BY}) (max without (instance) (rate(${counter}[1h]))) / sum by (${BY}) (max without (instance) (rate(controlroom_pricing_lanes_rated_total[1h])))`;

export const pricingDashboard = () =>
  controlRoomDashboard(
    {
      uid: 'controlroom-pricing',
      title: 'Control Room · Pricing models',
      description:
        'Pricing-model drift per model version: lanes rated, anomaly and needs_review shares, mean price per mile, the candidate share, and pricing variance.',
    },
    [
      stat({
        id: 1,
        title: 'Candidate traffic share',
        description: 'Share of rating traffic the candidate model gets (set on the Pricing page of the app).',
        at: [0, 0, 6, 4],
        queries: [
          {
            expr: 'max without (instance) (controlroom_pricing_candidate_share_ratio)',
            legend: 'candidate share',
          },
        ],
        unit: 'percentunit',
        decimals: 0,
        min: 0,
        max: 1,
        steps: neutral(),
        graphMode: 'none',
      }),
      stat({
        id: 2,
        title: 'Anomaly share, last hour',
        description:
          'Lanes whose price moved more than ±10% between the candidate and the active model / lanes rated, last hour (recording rule controlroom:pricing_anomaly_ratio:rate1h). PricingCandidateAnomalies fires when the candidate passes its configured threshold (default 5%) with enough lanes.',
        at: [6, 0, 6, 4],
        queries: [{ expr: 'controlroom:pricing_anomaly_ratio:rate1h', legend: LEGEND }],
        unit: 'percentunit',
        decimals: 1,
        // The alert threshold is configuration (PRICING_ANOMALY_* of the service), not a plan number; the
        // panel shows the value, the alert and the Pricing page judge it.
        steps: neutral(),
        graphMode: 'none',
        textMode: 'value_and_name',
      }),
      stat({
        id: 3,
        title: 'Lanes in the time range',
        description:
          'Lanes rated, flagged anomaly and sent to needs_review in the time range, per model version and role.',
        at: [12, 0, 6, 4],
        queries: [
          {
            expr: `sum by (${BY}) (max without (instance) (increase(controlroom_pricing_lanes_rated_total[$__range])))`,
            legend: `rated ${LEGEND}`,
          },
          {
            expr: `sum by (${BY}) (max without (instance) (increase(controlroom_pricing_anomaly_lanes_total[$__range])))`,
            legend: `anomaly ${LEGEND}`,
          },
          {
            expr: `sum by (${BY}) (max without (instance) (increase(controlroom_pricing_needs_review_lanes_total[$__range])))`,
            legend: `needs_review ${LEGEND}`,
          },
        ],
        unit: 'none',
        decimals: 0,
        steps: neutral(),
        graphMode: 'none',
        textMode: 'value_and_name',
      }),
      stat({
        id: 4,
        title: 'Pricing variance (30d)',
        description: `Mean |invoiced − quoted| / quoted over 30 days. Target at most ±${formatPlanValue({ value: planValue('pricing_variance_max'), unit: 'ratio' })}.`,
        at: [18, 0, 6, 4],
        queries: [{ expr: 'max without (instance) (tms_quote_variance_ratio)', legend: 'variance' }],
        unit: 'percentunit',
        decimals: 1,
        steps: below('pricing_variance_max'),
        graphMode: 'none',
      }),
      timeseries({
        id: 5,
        title: 'Lanes rated per model version',
        at: [0, 4, 12, 8],
        queries: [
          {
            expr: `sum by (${BY}) (max without (instance) (rate(controlroom_pricing_lanes_rated_total[$__rate_interval])))`,
            legend: LEGEND,
          },
        ],
        unit: 'ops',
        min: 0,
        steps: neutral('green'),
      }),
      timeseries({
        id: 6,
        title: 'Anomaly share per model version (1h)',
        at: [12, 4, 12, 8],
        queries: [{ expr: 'controlroom:pricing_anomaly_ratio:rate1h', legend: LEGEND }],
        unit: 'percentunit',
        min: 0,
        steps: neutral('green'),
      }),
      timeseries({
        id: 7,
        title: 'needs_review share per model version (1h)',
        description: 'Lanes the rating engine sent to review / lanes rated, last hour.',
        at: [0, 12, 12, 8],
        queries: [
          {
            expr: shareOfRated('controlroom_pricing_needs_review_lanes_total'),
            legend: LEGEND,
          },
        ],
        unit: 'percentunit',
        min: 0,
        steps: neutral('green'),
      }),
      timeseries({
        id: 8,
        title: 'Mean price per mile (1h)',
        description:
          'Quoted dollars / quoted miles over the last hour: a model drifting away from the active one shows here first.',
        at: [12, 12, 12, 8],
        queries: [
          {
            expr: `sum by (${BY}) (max without (instance) (rate(controlroom_pricing_quoted_dollars_total[1h]))) / sum by (${BY}) (max without (instance) (rate(controlroom_pricing_quoted_miles_total[1h])))`,
            legend: LEGEND,
          },
        ],
        unit: 'currencyUSD',
        decimals: 2,
        steps: neutral('green'),
      }),
      timeseries({
        id: 9,
        title: 'Candidate traffic share',
        at: [0, 20, 24, 6],
        queries: [
          {
            expr: 'max without (instance) (controlroom_pricing_candidate_share_ratio)',
            legend: 'candidate share',
          },
        ],
        unit: 'percentunit',
        min: 0,
        max: 1,
        steps: neutral('green'),
      }),
    ]
  );
