import fs from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { projectRoot } from '../../core/config.ts';
import { planValue, plainNumber } from '../../core/plan-targets.ts';
import { loadSpec, type Slo, type SloSpec } from './spec.ts';

export const generatedPath = path.join(projectRoot, 'alerting', 'generated', 'slo-rules.yml');

export const WINDOWS = ['5m', '30m', '1h', '2h', '6h', '1d', '3d', '30d'] as const;
type Window = (typeof WINDOWS)[number];

interface BurnTier {
  alert: string;
  long: Window;
  short: Window;
  burn: number;
  severity: 'P1' | 'P2' | 'P3';
  action: 'page' | 'ticket';
}

/** The multi-window, multi-burn-rate policy (Google SRE workbook, 30-day budget). */
export const BURN_TIERS: readonly BurnTier[] = [
  { alert: 'SLOBurnRate1h', long: '1h', short: '5m', burn: 14.4, severity: 'P1', action: 'page' },
  { alert: 'SLOBurnRate6h', long: '6h', short: '30m', burn: 6, severity: 'P1', action: 'page' },
  { alert: 'SLOBurnRate1d', long: '1d', short: '2h', burn: 3, severity: 'P2', action: 'ticket' },
  { alert: 'SLOBurnRate3d', long: '3d', short: '6h', burn: 1, severity: 'P3', action: 'ticket' },
];

interface RecordingRule {
  record: string;
  expr: string;
  labels: Record<string, string>;
}
interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

const sel = (metric: string, slo: Slo) => `${metric}{slo="${slo.name}"}`;
const budget = (slo: Slo) => Number((1 - slo.objective).toPrecision(12));
const pct = (x: number) => `${Number((x * 100).toPrecision(6))}%`;

/** `and` clause that silences an alert below the SLO's traffic floor (events per hour over `window`). */
function floorClause(slo: Slo, window: Window): string {
  if (slo.traffic_floor === undefined) return '';
  return `\n  and ${sel(`slo:sli_total:rate${window}`, slo)} * 3600 >= ${slo.traffic_floor}`;
}

function recordingRules(slo: Slo): RecordingRule[] {
  const labels = { slo: slo.name };
  const rules: RecordingRule[] = [];
  if ('events' in slo.sli) {
    const { errors, total, absent_errors_are_zero: absentIsZero, during } = slo.sli.events;
    // Only where the spec says so: for a latency SLI a missing bucket must read "no data", not "perfect".
    const errorsOver = (w: string) => {
      const at = errors.replaceAll('{{window}}', w);
      return absentIsZero ? `((${at}) or vector(0))` : `(${at})`;
    };
    if (during) {
      // Rates over one step, recorded only while the condition holds (absent otherwise). Every window then
      // sums the samples it has: the ratio covers only the condition's time, and an empty window (no
      // cutover in it) has no ratio at all, so no alert of this SLO can fire outside those windows.
      const when = `\nand on () ((${during.condition}) == 1)`;
      rules.push({ record: 'slo:sli_error:rate_during', expr: `${errorsOver(during.step)}${when}`, labels });
      rules.push({
        record: 'slo:sli_total:rate_during',
        expr: `(${total.replaceAll('{{window}}', during.step)})${when}`,
        labels,
      });
      for (const w of WINDOWS) {
        rules.push({
          record: `slo:sli_error:ratio_rate${w}`,
          expr: `sum_over_time(${sel('slo:sli_error:rate_during', slo)}[${w}])\n/\nsum_over_time(${sel('slo:sli_total:rate_during', slo)}[${w}])`,
          labels,
        });
        // The mean event rate while the condition held: what the traffic floor is compared with.
        rules.push({
          record: `slo:sli_total:rate${w}`,
          expr: `avg_over_time(${sel('slo:sli_total:rate_during', slo)}[${w}])`,
          labels,
        });
      }
    } else {
      for (const w of WINDOWS) {
        const totalAt = total.replaceAll('{{window}}', w);
        rules.push({ record: `slo:sli_error:ratio_rate${w}`, expr: `${errorsOver(w)}\n/\n(${totalAt})`, labels });
        rules.push({ record: `slo:sli_total:rate${w}`, expr: totalAt, labels });
      }
    }
  } else {
    rules.push({ record: 'slo:sli_bad:indicator', expr: slo.sli.time_slice.bad, labels });
    for (const w of WINDOWS) {
      rules.push({
        record: `slo:sli_error:ratio_rate${w}`,
        expr: `avg_over_time(${sel('slo:sli_bad:indicator', slo)}[${w}])`,
        labels,
      });
    }
  }
  if (slo.rolling_hour_alert) {
    // The SLO's own window is the rolling hour: its good ratio, for the dashboards' SLO cards. Absent in an
    // hour without events (no verdict), rather than NaN.
    rules.push({
      record: 'slo:sli_success:ratio_rate1h',
      expr: `(1 - ${sel('slo:sli_error:ratio_rate1h', slo)})\nand ${sel('slo:sli_total:rate1h', slo)} > 0`,
      labels,
    });
  }
  rules.push({ record: 'slo:objective:ratio', expr: `vector(${slo.objective})`, labels });
  for (const w of WINDOWS) {
    rules.push({
      record: `slo:burn_rate:${w}`,
      expr: `${sel(`slo:sli_error:ratio_rate${w}`, slo)} / ${budget(slo)}`,
      labels,
    });
  }
  // Burn over the whole period is the fraction of the budget consumed.
  rules.push({ record: 'slo:error_budget_remaining:ratio', expr: `1 - ${sel('slo:burn_rate:30d', slo)}`, labels });
  return rules;
}

function alertRules(slo: Slo): AlertRule[] {
  const about = `${slo.description} Objective ${pct(slo.objective)} over ${slo.period}.`;
  const rules: AlertRule[] = BURN_TIERS.map((tier) => ({
    alert: tier.alert,
    expr:
      `${sel(`slo:burn_rate:${tier.long}`, slo)} > ${tier.burn}\n` +
      `  and ${sel(`slo:burn_rate:${tier.short}`, slo)} > ${tier.burn}` +
      floorClause(slo, tier.long),
    labels: { severity: tier.severity, slo: slo.name, action: tier.action, window: `${tier.long}/${tier.short}` },
    annotations: {
      summary: `${slo.name}: error budget burning {{ $value | printf "%.1f" }}x (over ${tier.burn}x for ${tier.long} and ${tier.short})`,
      description: about,
    },
  }));
  rules.push({
    alert: 'ErrorBudgetHalfSpent',
    expr: `${sel('slo:burn_rate:30d', slo)} > ${plainNumber(planValue('error_budget_freeze_fraction'))}${floorClause(slo, '30d')}`,
    for: '5m',
    labels: { severity: 'P2', slo: slo.name, action: 'freeze' },
    annotations: {
      summary: `${slo.name}: {{ $value | humanizePercentage }} of the 30-day error budget is spent; releases are frozen`,
      description: about,
    },
  });
  if (slo.rolling_hour_alert) {
    rules.push({
      alert: 'SLORollingHourBelowObjective',
      expr: `${sel('slo:sli_error:ratio_rate1h', slo)} > ${budget(slo)}${floorClause(slo, '1h')}`,
      for: '5m',
      labels: { severity: 'P2', slo: slo.name, action: 'ticket' },
      annotations: {
        summary: `${slo.name}: the last hour is below ${pct(slo.objective)} ({{ $value | humanizePercentage }} failed)`,
        description: about,
      },
    });
  }
  if (slo.release_gate) rules.push(...releaseGateRules(slo, slo.release_gate));
  return rules;
}

/**
 * The plan's deploy gate on the last hour. Two alerts, both `action: freeze` with `gate: release`, so the
 * release freeze holds while either fires:
 * - ReleaseGateAgentSuccess: the good ratio of the last hour is below the gate, over the traffic floor
 *   (a quiet hour is not a verdict);
 * - ReleaseGateAgentSuccessUnreadable: the value cannot be read (the spec's `unreadable` expression has a
 *   result), so the gate fails closed instead of reading "no data" as "fine".
 */
function releaseGateRules(slo: Slo, gate: NonNullable<Slo['release_gate']>): AlertRule[] {
  const name = slo.name
    .split('_')
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');
  const labels = { severity: 'P2', slo: slo.name, action: 'freeze', gate: 'release' };
  const min = pct(gate.min_good_ratio);
  return [
    {
      alert: `ReleaseGate${name}`,
      expr: `1 - ${sel('slo:sli_error:ratio_rate1h', slo)} < ${gate.min_good_ratio}${floorClause(slo, '1h')}`,
      labels,
      annotations: {
        summary: `${slo.name}: {{ $value | humanizePercentage }} in the last hour, below the ${min} release gate; deploys are blocked`,
        description: `${slo.description} The plan blocks deploys while the last hour is below ${min}.`,
      },
    },
    {
      alert: `ReleaseGate${name}Unreadable`,
      expr: gate.unreadable,
      for: gate.unreadable_for,
      labels,
      annotations: {
        summary: `${slo.name}: the last hour cannot be read; deploys are blocked until it can (the gate fails closed)`,
        description: `${slo.description} The plan blocks deploys while the last hour is below ${min} or unknown.`,
      },
    },
  ];
}

export function generateRules(spec: SloSpec): string {
  const groups = spec.slos.map((slo) => ({
    name: `slo-${slo.name}`,
    rules: [...recordingRules(slo), ...alertRules(slo)],
  }));
  const header =
    '# GENERATED from alerting/slos.yaml by `npm run rules:generate`; do not edit by hand.\n' +
    '# A test fails when this file is out of date with the spec.\n';
  return header + YAML.stringify({ groups }, { lineWidth: 0, aliasDuplicateObjects: false });
}

export async function writeGeneratedRules(): Promise<string> {
  const text = generateRules(await loadSpec());
  await fs.writeFile(generatedPath, text);
  return generatedPath;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  writeGeneratedRules().then((file) => console.log(`wrote ${path.relative(projectRoot, file)}`));
}
