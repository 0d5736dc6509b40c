import { planValue } from '../../core/plan-targets.ts';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { bargauge, controlRoomDashboard, fixedColor, stat, table, timeseries } from './common.ts';

export const usageDashboard = () =>
  controlRoomDashboard(
    {
      uid: 'controlroom-usage',
      title: 'Control Room · Usage & overage',
      description:
        "Tenants per usage band, measured against the plan's included amount (soft limit): warnings at 80% and 90%, overage billed from 100%, the hard limit blocks.",
    },
    [
      stat({
        id: 1,
        title: 'Tenant-features below 80% of included',
        description: 'Tenant-features using less than 80% of their included amount this period.',
        at: [0, 0, 6, 4],
        queries: [
          {
            expr: 'sum(max without (instance) (tms_usage_companies{band="lt80"}))',
            legend: 'Below 80%',
          },
        ],
        unit: 'none',
        decimals: 0,
        steps: [['green', null]],
      }),
      stat({
        id: 2,
        title: 'Tenant-features at 80–90% of included',
        description: 'Warned at 80%; nothing billed yet.',
        at: [6, 0, 6, 4],
        queries: [{ expr: 'sum(max without (instance) (tms_usage_companies{band="80to90"}))', legend: '80–90%' }],
        unit: 'none',
        decimals: 0,
        steps: [['yellow', null]],
      }),
      stat({
        id: 3,
        title: 'Tenant-features at 90–100% of included',
        description: 'Warned at 90%; nothing billed yet.',
        at: [12, 0, 6, 4],
        queries: [
          {
            expr: 'sum(max without (instance) (tms_usage_companies{band="90to100"}))',
            legend: '90–100%',
          },
        ],
        unit: 'none',
        decimals: 0,
        steps: [['orange', null]],
      }),
      stat({
        id: 4,
        title: 'Tenant-features at or over included',
        description: 'The included amount is used up: overage is billed until the hard limit blocks.',
        at: [18, 0, 6, 4],
        queries: [
          {
            expr: 'sum(max without (instance) (tms_usage_companies{band="over"}))',
            legend: 'At or over limit',
          },
        ],
        unit: 'none',
        decimals: 0,
        steps: [['red', null]],
      }),
      bargauge({
        id: 5,
        title: 'Tenants per feature and band',
        description:
          'Every tenant with an included amount, per feature and band (tms_usage_companies; bands of usage / included amount).',
        at: [0, 4, 12, 10],
        queries: [
          {
            expr: 'sum by (feature, band) (max without (instance) (tms_usage_companies))',
            legend: '{{feature}} · {{band}}',
            instant: true,
          },
        ],
        unit: 'none',
        decimals: 0,
        min: 0,
        steps: [['blue', null]],
        orientation: 'horizontal',
        displayMode: 'basic',
        color: dashboard.FieldColorModeId.ContinuousBlPu,
        overrides: [
          { regexp: '.*· 80to90$', properties: [fixedColor('yellow')] },
          { regexp: '.*· 90to100$', properties: [fixedColor('orange')] },
          { regexp: '.*· over$', properties: [fixedColor('red')] },
        ],
      }),
      timeseries({
        id: 6,
        title: 'Worst 10 tenant-features (usage / included)',
        description:
          'tms_usage_ratio: 1 = the included amount used up (overage billed above); the hard limit is above it (2× on the seeded plans).',
        at: [12, 4, 12, 10],
        queries: [
          {
            expr: 'topk(10, max without (instance) (tms_usage_ratio) * on(company_id) group_left(name, plan) max without (instance) (tms_company_info))',
            legend: '{{name}} · {{feature}}',
          },
        ],
        unit: 'percentunit',
        steps: [
          ['green', null],
          ['yellow', planValue('usage_warning_first')],
          ['orange', planValue('usage_warning_second')],
          ['red', planValue('usage_billing_starts')],
        ],
        thresholdsStyle: 'dashed',
      }),
      table({
        id: 7,
        title: 'Tenants near their included amounts',
        description:
          'Tenants at or above 80% of their included amount (soft limit) in the current period (tms_usage_ratio), worst first. Above 100% is billed as overage; the hard limit blocks.',
        at: [0, 14, 24, 12],
        queries: [
          {
            expr: 'sort_desc(tms_usage_ratio * on(company_id) group_left(name, plan) max without (instance) (tms_company_info))',
            legend: '',
            instant: true,
            format: 'table',
          },
        ],
        unit: 'percentunit',
        decimals: 1,
        steps: [
          ['green', null],
          ['yellow', planValue('usage_warning_first')],
          ['orange', planValue('usage_warning_second')],
          ['red', planValue('usage_billing_starts')],
        ],
        sortBy: { displayName: 'Used / hard limit', desc: true },
        transformations: [
          {
            id: 'organize',
            options: {
              excludeByName: {
                Time: true,
                __name__: true,
                job: true,
                instance: true,
              },
              indexByName: {
                name: 0,
                plan: 1,
                feature: 2,
                company_id: 3,
                Value: 4,
              },
              renameByName: {
                name: 'Tenant',
                plan: 'Plan',
                feature: 'Feature',
                company_id: 'Company id',
                Value: 'Used / hard limit',
              },
            },
          },
        ],
        overrides: [
          {
            name: 'Used / hard limit',
            properties: [
              {
                id: 'custom.cellOptions',
                value: { type: 'color-background', mode: 'gradient' },
              },
            ],
          },
        ],
      }),
      bargauge({
        id: 8,
        title: 'Live tenants by plan',
        at: [0, 26, 24, 6],
        queries: [
          {
            expr: 'sum by (plan) (max without (instance) (tms_companies))',
            legend: '{{plan}}',
            instant: true,
          },
        ],
        unit: 'none',
        decimals: 0,
        min: 0,
        steps: [['blue', null]],
        orientation: 'vertical',
        displayMode: 'gradient',
      }),
    ]
  );
