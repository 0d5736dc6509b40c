import { planValue } from '../../core/plan-targets.ts';
import { BURN_TIERS } from '../../alerting/slo/generate.ts';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { controlRoomDashboard, PROMETHEUS, fixedColor, gauge, stat, table, timeseries } from './common.ts';

/** The burn rate an alert tier of the generated rules fires at: the stat and graph colour at the same speeds. */
function burnRateOf(alert: string): number {
  const tier = BURN_TIERS.find((t) => t.alert === alert);
  if (!tier) throw new Error(`no burn tier ${alert} in alerting/slo/generate.ts`);
  return tier.burn;
}

/** The SLO picker: every SLO the generated rules record an objective for (alerting/slos.yaml). */
function sloVariable(): dashboard.QueryVariableBuilder {
  const query = 'label_values(slo:objective:ratio, slo)';
  return new dashboard.QueryVariableBuilder('slo')
    .label('SLO')
    .datasource(PROMETHEUS)
    .definition(query)
    .query({
      qryType: 1,
      query,
      refId: 'PrometheusVariableQueryEditor-VariableQuery',
    })
    .current({ selected: true, text: 'availability', value: 'availability' })
    .includeAll(false)
    .multi(false)
    .refresh(dashboard.VariableRefresh.OnDashboardLoad)
    .sort(dashboard.VariableSort.AlphabeticalAsc)
    .regex('')
    .hide(dashboard.VariableHide.DontHide)
    .options([]);
}

export const sloDashboard = () =>
  controlRoomDashboard(
    {
      uid: 'controlroom-slo',
      title: 'Control Room · SLO detail',
      description: 'Error budget, burn rates and alerts of one SLO.',
      from: 'now-24h',
      variables: [sloVariable()],
    },
    [
      gauge({
        id: 1,
        title: 'Error budget remaining (30d)',
        at: [0, 0, 6, 7],
        queries: [
          {
            expr: 'slo:error_budget_remaining:ratio{slo=~"$slo"}',
            legend: '{{slo}}',
          },
        ],
        unit: 'percentunit',
        decimals: 1,
        min: 0,
        max: 1,
        steps: [
          ['red', null],
          ['orange', 0.25],
          ['green', 1 - planValue('error_budget_freeze_fraction')],
        ],
      }),
      stat({
        id: 2,
        title: 'Objective / achieved (30d)',
        at: [6, 0, 6, 7],
        queries: [
          { expr: 'slo:objective:ratio{slo=~"$slo"}', legend: 'objective' },
          {
            expr: '1 - slo:sli_error:ratio_rate30d{slo=~"$slo"}',
            legend: 'achieved',
          },
        ],
        unit: 'percentunit',
        decimals: 3,
        steps: [['blue', null]],
        graphMode: 'none',
        textMode: 'value_and_name',
      }),
      stat({
        id: 3,
        title: 'Burn rate now',
        description:
          'Budget consumption speed; 1× spends the 30-day budget in exactly 30 days. Pages at 14.4× (1h) and 6× (6h), tickets at 3× (1d) and 1× (3d).',
        at: [12, 0, 12, 7],
        queries: [
          { expr: 'slo:burn_rate:1h{slo=~"$slo"}', legend: '1h' },
          { expr: 'slo:burn_rate:6h{slo=~"$slo"}', legend: '6h' },
          { expr: 'slo:burn_rate:1d{slo=~"$slo"}', legend: '1d' },
          { expr: 'slo:burn_rate:3d{slo=~"$slo"}', legend: '3d' },
        ],
        unit: 'suffix:×',
        decimals: 2,
        steps: [
          ['green', null],
          ['yellow', burnRateOf('SLOBurnRate3d')],
          ['orange', burnRateOf('SLOBurnRate6h')],
          ['red', burnRateOf('SLOBurnRate1h')],
        ],
        colorMode: 'background',
        textMode: 'value_and_name',
      }),
      timeseries({
        id: 4,
        title: 'Burn rate by window',
        at: [0, 7, 24, 9],
        queries: [
          { expr: 'slo:burn_rate:1h{slo=~"$slo"}', legend: '1h' },
          { expr: 'slo:burn_rate:6h{slo=~"$slo"}', legend: '6h' },
          { expr: 'slo:burn_rate:1d{slo=~"$slo"}', legend: '1d' },
          { expr: 'slo:burn_rate:3d{slo=~"$slo"}', legend: '3d' },
        ],
        unit: 'suffix:×',
        steps: [
          ['green', null],
          ['yellow', burnRateOf('SLOBurnRate3d')],
          ['orange', burnRateOf('SLOBurnRate6h')],
          ['red', burnRateOf('SLOBurnRate1h')],
        ],
        thresholdsStyle: 'dashed',
      }),
      timeseries({
        id: 5,
        title: 'Error ratio vs objective',
        at: [0, 16, 24, 9],
        queries: [
          {
            expr: 'slo:sli_error:ratio_rate5m{slo=~"$slo"}',
            legend: 'error ratio 5m',
          },
          {
            expr: 'slo:sli_error:ratio_rate1h{slo=~"$slo"}',
            legend: 'error ratio 1h',
          },
          {
            expr: 'slo:sli_error:ratio_rate30d{slo=~"$slo"}',
            legend: 'error ratio 30d',
          },
          {
            expr: '1 - slo:objective:ratio{slo=~"$slo"}',
            legend: 'allowed (1 - objective)',
          },
        ],
        unit: 'percentunit',
        steps: [['green', null]],
        overrides: [
          {
            name: 'allowed (1 - objective)',
            properties: [
              fixedColor('red'),
              {
                id: 'custom.lineStyle',
                value: { fill: 'dash', dash: [10, 10] },
              },
              { id: 'custom.fillOpacity', value: 0 },
            ],
          },
        ],
      }),
      table({
        id: 6,
        title: 'Firing and pending alerts',
        description: 'ALERTS for the selected SLO; the query falls back to 0 (hidden) when nothing fires.',
        at: [0, 25, 24, 8],
        queries: [
          {
            expr: 'ALERTS{slo=~"$slo"} or on() vector(0)',
            legend: '',
            instant: true,
            format: 'table',
          },
        ],
        steps: [['green', null]],
        sortBy: { displayName: 'severity', desc: false },
        transformations: [
          {
            id: 'filterByValue',
            options: {
              type: 'exclude',
              match: 'any',
              filters: [
                {
                  fieldName: 'Value',
                  config: { id: 'equal', options: { value: 0 } },
                },
              ],
            },
          },
          {
            id: 'organize',
            options: {
              excludeByName: {
                Time: true,
                Value: true,
                __name__: true,
                job: true,
                instance: true,
              },
              indexByName: {
                alertname: 0,
                alertstate: 1,
                severity: 2,
                slo: 3,
                window: 4,
              },
              renameByName: {},
            },
          },
        ],
      }),
    ]
  );
