import { planValue } from '../../core/plan-targets.ts';
import { bargauge, controlRoomDashboard, fixedColor, stat, timeseries, upDownStat } from './common.ts';

export const selfDashboard = () =>
  controlRoomDashboard(
    {
      uid: 'controlroom-self',
      title: 'Control Room · Self-monitoring',
      description: 'The exporter, the alert receiver, the agent queue and the process.',
    },
    [
      upDownStat({
        id: 1,
        title: 'Scrape target up',
        at: [0, 0, 6, 4],
        expr: 'up{job="controlroom"}',
        legend: '{{instance}}',
      }),
      bargauge({
        id: 2,
        title: 'Collector errors (time range)',
        at: [6, 0, 9, 8],
        queries: [
          {
            expr: 'sum by (collector) (increase(controlroom_exporter_collect_errors_total[$__range]))',
            legend: '{{collector}}',
            instant: true,
          },
        ],
        unit: 'none',
        decimals: 0,
        min: 0,
        steps: [
          ['green', null],
          ['orange', 1],
          ['red', 10],
        ],
        orientation: 'horizontal',
        displayMode: 'basic',
      }),
      bargauge({
        id: 3,
        title: 'Time since last successful refresh',
        at: [15, 0, 9, 8],
        queries: [
          {
            expr: 'time() - controlroom_exporter_last_success_timestamp_seconds',
            legend: '{{collector}}',
            instant: true,
          },
        ],
        unit: 's',
        decimals: 0,
        min: 0,
        steps: [
          ['green', null],
          ['orange', 120],
          ['red', 300],
        ],
        orientation: 'horizontal',
        displayMode: 'basic',
      }),
      stat({
        id: 4,
        title: 'Resident memory',
        at: [0, 4, 6, 4],
        queries: [
          {
            expr: 'process_resident_memory_bytes{job="controlroom"}',
            legend: '{{instance}}',
          },
        ],
        unit: 'bytes',
        steps: [
          ['green', null],
          ['orange', 536870912],
          ['red', 1073741824],
        ],
      }),
      timeseries({
        id: 5,
        title: 'Collector refresh duration',
        at: [0, 8, 12, 8],
        queries: [
          {
            expr: 'controlroom_exporter_collect_duration_seconds',
            legend: '{{collector}}',
          },
        ],
        unit: 's',
        steps: [
          ['green', null],
          ['orange', 5],
          ['red', 10],
        ],
        thresholdsStyle: 'dashed',
      }),
      timeseries({
        id: 6,
        title: 'Time since last successful refresh',
        at: [12, 8, 12, 8],
        queries: [
          {
            expr: 'time() - controlroom_exporter_last_success_timestamp_seconds',
            legend: '{{collector}}',
          },
        ],
        unit: 's',
        steps: [
          ['green', null],
          ['orange', 120],
          ['red', 300],
        ],
        thresholdsStyle: 'dashed',
      }),
      timeseries({
        id: 7,
        title: 'Collector errors',
        at: [0, 16, 12, 8],
        queries: [
          {
            expr: 'sum by (collector) (increase(controlroom_exporter_collect_errors_total[$__rate_interval]))',
            legend: '{{collector}}',
          },
        ],
        unit: 'none',
        steps: [
          ['green', null],
          ['red', 1],
        ],
        drawStyle: 'bars',
        fillOpacity: 60,
      }),
      timeseries({
        id: 8,
        title: 'Open id gaps',
        description:
          'Id ranges without rows still re-checked for late commits, and gaps given up after the grace period.',
        at: [12, 16, 12, 8],
        queries: [
          {
            expr: 'controlroom_exporter_open_id_gaps',
            legend: '{{collector}}',
          },
          {
            expr: 'sum by (collector) (increase(controlroom_exporter_abandoned_id_gaps_total[$__rate_interval])) or on() vector(0)',
            legend: 'abandoned {{collector}}',
          },
        ],
        unit: 'none',
        steps: [['green', null]],
      }),
      timeseries({
        id: 9,
        title: 'Alert notifications by outcome',
        description: 'Webhook notifications accepted, duplicate or rejected (0 until the first one arrives).',
        at: [0, 24, 12, 8],
        queries: [
          {
            expr: 'sum by (outcome) (increase(controlroom_alert_notifications_total[$__rate_interval])) or on() vector(0)',
            legend: '{{outcome}}',
          },
        ],
        unit: 'none',
        steps: [['green', null]],
        drawStyle: 'bars',
        fillOpacity: 60,
        stacked: true,
        overrides: [{ name: 'rejected', properties: [fixedColor('red')] }],
      }),
      timeseries({
        id: 10,
        title: 'Resident memory',
        at: [12, 24, 12, 8],
        queries: [
          {
            expr: 'process_resident_memory_bytes{job="controlroom"}',
            legend: '{{instance}}',
          },
        ],
        unit: 'bytes',
        steps: [['green', null]],
      }),
      timeseries({
        id: 11,
        title: 'Agent queue',
        at: [0, 32, 12, 8],
        queries: [
          {
            expr: 'sum by (fn_name) (max without (instance) (tms_agent_tasks_pending))',
            legend: 'pending {{fn_name}}',
          },
          {
            expr: 'sum(max without (instance) (tms_agent_tasks_pending)) or vector(0)',
            legend: 'pending (all)',
          },
        ],
        unit: 'none',
        steps: [['green', null]],
      }),
      timeseries({
        id: 12,
        title: 'Oldest pending agent task',
        description: 'agent_queue SLO: the oldest queued task younger than 60 s.',
        at: [12, 32, 12, 8],
        queries: [
          {
            expr: 'max without (instance) (tms_agent_task_oldest_pending_age_seconds)',
            legend: 'oldest pending',
          },
        ],
        unit: 's',
        steps: [
          ['green', null],
          ['red', planValue('agent_queue_oldest_seconds')],
        ],
        thresholdsStyle: 'line',
      }),
    ]
  );
