import { planValue } from "../../core/plan-targets.ts";
import {
  bargauge,
  controlRoomDashboard,
  stat,
  timeseries,
  valueText,
} from "./common.ts";

export const executiveDashboard = () =>
  controlRoomDashboard(
    {
      uid: "controlroom-executive",
      title: "Control Room · Executive",
      description: "SLOs, conversions, revenue and release freeze at a glance.",
    },
    [
      stat({
        id: 1,
        title: "Availability (30d)",
        description:
          "Share of non-5xx API requests over 30 days. Objective 99.95% (Phase 6 north star and the customer-facing uptime SLA): green at the objective, orange down to the earlier 99.9%, red below.",
        at: [0, 0, 6, 5],
        queries: [
          {
            expr: '1 - slo:sli_error:ratio_rate30d{slo="availability"}',
            legend: "availability",
          },
        ],
        unit: "percentunit",
        decimals: 3,
        min: 0,
        max: 1,
        steps: [
          ["red", null],
          ["orange", 0.999],
          ["green", planValue("availability_objective")],
        ],
      }),
      stat({
        id: 2,
        title: "Agent success (last hour)",
        description:
          "Successful / finished agent tasks over the last hour. Objective 99% in every rolling hour (Phase 6); below 98% the release gate blocks deploys (red). The 30-day view is on the SLO dashboard.",
        at: [6, 0, 6, 5],
        queries: [
          {
            expr: '1 - slo:sli_error:ratio_rate1h{slo="agent_success"}',
            legend: "agent success",
          },
        ],
        unit: "percentunit",
        decimals: 2,
        min: 0,
        max: 1,
        steps: [
          ["red", null],
          ["orange", planValue("release_gate_agent_success")],
          ["green", planValue("agent_success_objective")],
        ],
      }),
      stat({
        id: 3,
        title: "Quote latency p95 (uncached, 5m)",
        description: "SLO: 95% of uncached quotes within 0.5 s.",
        at: [12, 0, 6, 5],
        queries: [
          {
            expr: 'histogram_quantile(0.95, sum by (le) (rate(tms_quote_request_duration_seconds_bucket{cached="false"}[5m])))',
            legend: "p95",
          },
        ],
        unit: "s",
        decimals: 2,
        steps: [
          ["green", null],
          ["orange", 0.4],
          ["red", planValue("quote_p95_uncached_seconds")],
        ],
      }),
      stat({
        id: 4,
        title: "Release freeze",
        description:
          "Error-budget release freeze state and the cause in force.",
        at: [18, 0, 6, 5],
        queries: [
          { expr: "controlroom_release_frozen", legend: "freeze" },
          {
            expr: "controlroom_release_freeze_reason == 1",
            legend: "{{reason}}",
          },
        ],
        steps: [
          ["green", null],
          ["red", 1],
        ],
        mappings: [
          valueText([
            [0, "Releases open", "green"],
            [1, "Releases frozen", "red"],
          ]),
        ],
        colorMode: "background",
        graphMode: "none",
        textMode: "value_and_name",
      }),
      stat({
        id: 5,
        title: "MRR",
        at: [0, 5, 6, 5],
        queries: [{ expr: "tms_mrr_dollars", legend: "MRR" }],
        unit: "currencyUSD",
        decimals: 0,
        steps: [["blue", null]],
      }),
      stat({
        id: 6,
        title: "ARPA",
        at: [6, 5, 6, 5],
        queries: [{ expr: "tms_arpa_dollars", legend: "ARPA" }],
        unit: "currencyUSD",
        decimals: 0,
        steps: [["blue", null]],
      }),
      stat({
        id: 7,
        title: "Paying accounts",
        at: [12, 5, 6, 5],
        queries: [{ expr: "tms_paying_accounts", legend: "paying accounts" }],
        unit: "none",
        decimals: 0,
        steps: [["blue", null]],
      }),
      bargauge({
        id: 8,
        title: "Conversions (30-day cohorts)",
        at: [18, 5, 6, 5],
        queries: [
          {
            expr: 'tms_conversion_ratio{funnel=~"trial_to_paid|quote_to_book|invite_to_onboard"}',
            legend: "{{funnel}}",
            instant: true,
          },
        ],
        unit: "percentunit",
        decimals: 1,
        min: 0,
        max: 1,
        steps: [
          ["red", null],
          ["orange", 0.1],
          ["green", 0.25],
        ],
        orientation: "horizontal",
        displayMode: "gradient",
      }),
      timeseries({
        id: 9,
        title: "Error budget remaining (30d), all SLOs",
        at: [0, 10, 12, 8],
        queries: [
          { expr: "slo:error_budget_remaining:ratio", legend: "{{slo}}" },
        ],
        unit: "percentunit",
        steps: [
          ["red", null],
          ["orange", 0],
          ["green", 1 - planValue("error_budget_freeze_fraction")],
        ],
        thresholdsStyle: "line+area",
      }),
      timeseries({
        id: 10,
        title: "Revenue",
        at: [12, 10, 12, 8],
        queries: [
          { expr: "tms_mrr_dollars", legend: "MRR" },
          { expr: "tms_arpa_dollars", legend: "ARPA" },
        ],
        unit: "currencyUSD",
        steps: [["green", null]],
        overrides: [
          {
            name: "ARPA",
            properties: [{ id: "custom.axisPlacement", value: "right" }],
          },
        ],
      }),
      timeseries({
        id: 11,
        title: "Conversions over time",
        at: [0, 18, 24, 7],
        queries: [
          {
            expr: 'tms_conversion_ratio{funnel=~"trial_to_paid|quote_to_book|invite_to_onboard"}',
            legend: "{{funnel}}",
          },
        ],
        unit: "percentunit",
        steps: [["green", null]],
      }),
    ],
  );
