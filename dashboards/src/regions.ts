import { bargauge, controlRoomDashboard, regionHealth, specialText, stat, timeseries, valueText } from './common.ts';

export const regionsDashboard = () =>
  controlRoomDashboard(
    {
      uid: 'controlroom-regions',
      title: 'Control Room · Regions',
      description: 'Region health, routing, replication and traffic.',
    },
    [
      regionHealth({ id: 1, at: [0, 0, 6, 5] }),
      stat({
        id: 2,
        title: 'Active (write) region',
        at: [6, 0, 6, 5],
        queries: [{ expr: 'max without (instance) (tms_region_active)', legend: '{{region}}' }],
        steps: [
          ['text', null],
          ['blue', 1],
        ],
        mappings: [
          valueText([
            [0, 'Standby', 'text'],
            [1, 'Active', 'blue'],
          ]),
        ],
        colorMode: 'background',
        graphMode: 'none',
        textMode: 'value_and_name',
      }),
      bargauge({
        id: 3,
        title: 'Traffic weight',
        at: [12, 0, 6, 5],
        queries: [
          {
            expr: 'max without (instance) (tms_region_traffic_weight)',
            legend: '{{region}}',
            instant: true,
          },
        ],
        unit: 'percent',
        decimals: 0,
        min: 0,
        max: 100,
        steps: [['blue', null]],
        orientation: 'horizontal',
        displayMode: 'gradient',
      }),
      stat({
        id: 4,
        title: 'Write freeze (cutover)',
        at: [18, 0, 6, 5],
        queries: [{ expr: 'max without (instance) (tms_region_write_frozen)', legend: 'writes' }],
        steps: [
          ['green', null],
          ['orange', 1],
        ],
        mappings: [
          valueText([
            [0, 'Writes open', 'green'],
            [1, 'Writes frozen', 'orange'],
          ]),
        ],
        colorMode: 'background',
        graphMode: 'none',
      }),
      timeseries({
        id: 5,
        title: 'Consecutive failed health checks',
        description: 'A region is unhealthy after 3 failures in a row.',
        at: [0, 5, 12, 8],
        queries: [{ expr: 'max without (instance) (tms_region_consecutive_failures)', legend: '{{region}}' }],
        unit: 'none',
        steps: [
          ['green', null],
          ['orange', 1],
          ['red', 3],
        ],
        thresholdsStyle: 'dashed',
      }),
      timeseries({
        id: 6,
        title: 'Replication lag',
        description:
          'Regions without a replication lag URL have no reading (shown as empty / "no lag URL"). The dashed lines are the RPO target and half of it: ReplicationLagNearRPO warns at half, ReplicationLagOverRPO pages at the target.',
        at: [12, 5, 12, 8],
        queries: [
          {
            expr: 'max without (instance) (tms_region_replication_lag_seconds) or on(region) (max without (instance) (tms_region_up) * NaN)',
            legend: '{{region}}',
          },
          {
            expr: '0.5 * max without (instance) (controlroom_failover_objective_target_seconds{objective="rpo"})',
            legend: '50% of RPO (warning)',
          },
          {
            expr: 'max without (instance) (controlroom_failover_objective_target_seconds{objective="rpo"})',
            legend: 'RPO target (page)',
          },
        ],
        unit: 's',
        steps: [
          ['green', null],
          ['orange', 5],
          ['red', 30],
        ],
        mappings: [specialText('nan', 'no lag URL')],
        thresholdsStyle: 'dashed',
      }),
      timeseries({
        id: 7,
        title: 'Request rate by region',
        at: [0, 13, 12, 8],
        queries: [
          {
            expr: 'sum by (region) (max without (instance) (rate(tms_api_requests_total[$__rate_interval])))',
            legend: '{{region}}',
          },
        ],
        unit: 'reqps',
        steps: [['green', null]],
      }),
      timeseries({
        id: 8,
        title: '5xx ratio by region',
        at: [12, 13, 12, 8],
        queries: [
          {
            expr: 'sum by (region) (max without (instance) (rate(tms_api_requests_total{code_class="5xx"}[$__rate_interval]) or 0 * rate(tms_api_requests_total[$__rate_interval]))) / sum by (region) (max without (instance) (rate(tms_api_requests_total[$__rate_interval])))',
            legend: '{{region}}',
          },
        ],
        unit: 'percentunit',
        steps: [
          ['green', null],
          ['orange', 0.001],
          ['red', 0.01],
        ],
        thresholdsStyle: 'dashed',
      }),
      timeseries({
        id: 9,
        title: 'Requests by status class',
        at: [0, 21, 24, 8],
        queries: [
          {
            expr: 'sum by (region, code_class) (max without (instance) (rate(tms_api_requests_total[$__rate_interval])))',
            legend: '{{region}} {{code_class}}',
          },
        ],
        unit: 'reqps',
        steps: [['green', null]],
        fillOpacity: 30,
        stacked: true,
      }),
      timeseries({
        id: 10,
        title: 'Read latency p95 (health-check round trip)',
        description:
          "95th percentile of each region's health-check round trip; the plan's target is p95 < 150 ms (RegionReadLatencyHigh fires at or above it for 5 minutes).",
        at: [0, 29, 12, 8],
        queries: [
          {
            expr: 'histogram_quantile(0.95, sum by (region, le) (max without (instance) (rate(tms_region_check_duration_seconds_bucket[$__rate_interval]))))',
            legend: '{{region}}',
          },
        ],
        unit: 's',
        min: 0,
        steps: [
          ['green', null],
          ['red', 0.15],
        ],
        thresholdsStyle: 'dashed',
        tooltipSort: 'none',
      }),
      stat({
        id: 11,
        title: 'Last drill vs RTO / RPO targets',
        description:
          'RTO and RPO measured by the last finished drill and game day, beside the targets (FAILOVER_RTO_TARGET_SECONDS, FAILOVER_RPO_TARGET_SECONDS). "none yet" until one has run.',
        at: [12, 29, 8, 8],
        queries: [
          {
            expr: 'max without (instance) (controlroom_failover_last_drill_seconds) or on() label_replace(max without (instance) (controlroom_failover_objective_target_seconds) * NaN, "kind", "drill", "", "")',
            legend: '{{kind}} {{objective}}',
            instant: true,
          },
          {
            expr: 'max without (instance) (controlroom_failover_objective_target_seconds)',
            legend: '{{objective}} target',
            instant: true,
          },
        ],
        unit: 's',
        steps: [['blue', null]],
        mappings: [specialText('nan', 'none yet')],
        graphMode: 'none',
        textMode: 'value_and_name',
        orientation: 'horizontal',
      }),
      stat({
        id: 12,
        title: 'Last drill / game day',
        at: [20, 29, 4, 4],
        queries: [
          {
            expr: 'max without (instance) (controlroom_failover_last_drill_passed) or on() label_replace(vector(-1), "kind", "drill", "", "")',
            legend: '{{kind}}',
            instant: true,
          },
        ],
        steps: [['blue', null]],
        mappings: [
          valueText([
            [-1, 'none yet', 'blue'],
            [0, 'Failed', 'red'],
            [1, 'Passed', 'green'],
          ]),
        ],
        colorMode: 'background',
        graphMode: 'none',
        textMode: 'value_and_name',
      }),
      stat({
        id: 13,
        title: 'Background jobs (cutover)',
        at: [20, 33, 4, 4],
        queries: [{ expr: 'max without (instance) (tms_region_jobs_paused)', legend: 'jobs' }],
        steps: [
          ['green', null],
          ['orange', 1],
        ],
        mappings: [
          valueText([
            [0, 'Running', 'green'],
            [1, 'Paused', 'orange'],
          ]),
        ],
        colorMode: 'background',
        graphMode: 'none',
      }),
      stat({
        id: 14,
        title: 'Post-cutover integrity checks (24 h)',
        description:
          'Invoice count, agent queue depth and API error rate before vs after the last cutover; a failed check pages (FailoverIntegrityCheckFailed).',
        at: [0, 37, 24, 4],
        queries: [
          {
            expr: 'max without (instance) (controlroom_failover_integrity_check_failed) or on() label_replace(vector(-1), "check", "no cutover checked", "", "")',
            legend: '{{check}}',
            instant: true,
          },
        ],
        steps: [['blue', null]],
        mappings: [
          valueText([
            [-1, 'none', 'blue'],
            [0, 'Passed', 'green'],
            [1, 'Failed', 'red'],
          ]),
        ],
        colorMode: 'background',
        graphMode: 'none',
        textMode: 'value_and_name',
      }),
    ]
  );
