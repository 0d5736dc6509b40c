/**
 * The shared parts of Control Room's dashboards, built with Grafana's own dashboards-as-code library
 * (@grafana/grafana-foundation-sdk): the provisioned Prometheus datasource, the dashboard frame every
 * dashboard shares, one helper per panel type with the house style, and thresholds read from the plan
 * targets (core/plan-targets.ts), so a target that changes in the plan changes every panel drawing it.
 *
 * A panel is described by a small spec (id, title, grid position, queries, unit, threshold steps) and
 * built with the SDK's typed builders; everything the spec does not name is the house default (stats
 * reduce to the last non-null value, time series are thin lines with a shared multi tooltip).
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as bargaugePanel from '@grafana/grafana-foundation-sdk/bargauge';
import * as gaugePanel from '@grafana/grafana-foundation-sdk/gauge';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as statPanel from '@grafana/grafana-foundation-sdk/stat';
import * as tablePanel from '@grafana/grafana-foundation-sdk/table';
import * as timeseriesPanel from '@grafana/grafana-foundation-sdk/timeseries';
import { planValue, type PlanTargetKey } from '../../core/plan-targets.ts';

/** The datasource provisioned by provisioning/datasources/controlroom.yaml; every panel and query names it. */
export const PROMETHEUS: common.DataSourceRef = {
  type: 'prometheus',
  uid: 'controlroom-prometheus',
};

/**
 * The schema version the committed JSON declares. Grafana migrates older schemas on load, never newer
 * ones it does not know; 39 is what every supported Grafana (>= 13) reads, and what the evidence export
 * and the dashboard tests were written against.
 */
export const SCHEMA_VERSION = 39;

export interface Query {
  expr: string;
  /** Grafana's legend format (`{{label}}` placeholders). */
  legend: string;
  /** One value per series at the end of the range (bar gauges, tables) instead of a range query. */
  instant?: boolean;
  format?: 'table';
}

/** Threshold steps, lowest first: the colour from each value on (the first step's value is null: −∞). */
export type Steps = ReadonlyArray<readonly [color: string, from: number | null]>;

export interface Override {
  name?: string;
  regexp?: string;
  properties: dashboard.DynamicConfigValue[];
}

interface PanelSpec {
  /** Stable within the dashboard: links and the evidence export name panels by id. */
  id: number;
  title: string;
  description?: string;
  /** Grid position: x, y, width, height (24 columns). */
  at: readonly [x: number, y: number, w: number, h: number];
  queries: readonly Query[];
  unit?: string;
  decimals?: number;
  min?: number;
  max?: number;
  steps: Steps;
  mappings?: dashboard.ValueMapping[];
  overrides?: readonly Override[];
}

// ---- thresholds from the plan ----

/** A floor from the plan (a conversion rate, an objective): red below the target, green from it on. */
export function atLeast(key: PlanTargetKey, warnFrom?: number): Steps {
  const target = planValue(key);
  return [['red', null], ...(warnFrom === undefined ? [] : ([['orange', warnFrom]] as const)), ['green', target]];
}

/** A ceiling from the plan (a latency bound, a variance, churn): green below the target, red from it on. */
export function below(key: PlanTargetKey, warnFrom?: number): Steps {
  const target = planValue(key);
  return [['green', null], ...(warnFrom === undefined ? [] : ([['orange', warnFrom]] as const)), ['red', target]];
}

/** A band from the plan (the overage share's 8–12%): green inside, orange below, red from the top on. */
export function within(lowKey: PlanTargetKey, highKey: PlanTargetKey): Steps {
  return [
    ['orange', null],
    ['green', planValue(lowKey)],
    ['red', planValue(highKey)],
  ];
}

/** One colour for a value that has no target (revenue, counts). */
export const neutral = (color = 'blue'): Steps => [[color, null]];

// ---- field config helpers ----

/** Value → text and colour, in the order given (Grafana's mapping index). */
export function valueText(
  map: ReadonlyArray<readonly [value: number, text: string, color: string]>
): dashboard.ValueMapping {
  const options: Record<string, dashboard.ValueMappingResult> = {};
  map.forEach(([value, text, color], index) => (options[String(value)] = { text, color, index }));
  return { type: dashboard.MappingType.ValueToText, options };
}

export function specialText(match: 'nan' | 'null', text: string): dashboard.ValueMapping {
  return {
    type: dashboard.MappingType.SpecialValue,
    options: {
      match: match === 'nan' ? dashboard.SpecialValueMatch.NotANumber : dashboard.SpecialValueMatch.Null,
      result: { text, index: 0 },
    },
  };
}

/** Thresholds for one series of a panel (e.g. one funnel among three, each with its own target). */
export const thresholdsFor = (steps: Steps): dashboard.DynamicConfigValue => ({
  id: 'thresholds',
  value: {
    mode: dashboard.ThresholdsMode.Absolute,
    steps: steps.map(([color, value]) => ({ color, value })),
  },
});

export const fixedColor = (color: string): dashboard.DynamicConfigValue => ({
  id: 'color',
  value: { mode: 'fixed', fixedColor: color },
});

/** A Prometheus query with the provisioned datasource; range unless `instant`. */
function promQuery(q: Query, refId: string): prometheus.DataqueryBuilder {
  const builder = new prometheus.DataqueryBuilder()
    .datasource(PROMETHEUS)
    .expr(q.expr)
    .legendFormat(q.legend)
    .editorMode(prometheus.QueryEditorMode.Code)
    .refId(refId);
  if (q.format) builder.format(prometheus.PromQueryFormat.Table);
  return q.instant ? builder.instant() : builder.range();
}

const refId = (i: number) => String.fromCharCode(65 + i);

function thresholdsOf(steps: Steps): dashboard.ThresholdsConfigBuilder {
  return new dashboard.ThresholdsConfigBuilder()
    .mode(dashboard.ThresholdsMode.Absolute)
    .steps(steps.map(([color, value]) => ({ color, value })));
}

const lastNotNull = () => new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).fields('').values(false);

/** The parts every panel type shares: identity, position, datasource, queries and standard field config. */
type CommonPanel =
  | statPanel.PanelBuilder
  | timeseriesPanel.PanelBuilder
  | bargaugePanel.PanelBuilder
  | gaugePanel.PanelBuilder
  | tablePanel.PanelBuilder;
function applyCommon<P extends CommonPanel>(panel: P, spec: PanelSpec): P {
  const [x, y, w, h] = spec.at;
  panel.id(spec.id).title(spec.title).datasource(PROMETHEUS).gridPos({ x, y, w, h });
  if (spec.description !== undefined) panel.description(spec.description);
  panel.targets(spec.queries.map((q, i) => promQuery(q, refId(i))));
  if (spec.unit !== undefined) panel.unit(spec.unit);
  if (spec.decimals !== undefined) panel.decimals(spec.decimals);
  if (spec.min !== undefined) panel.min(spec.min);
  if (spec.max !== undefined) panel.max(spec.max);
  if (spec.mappings) panel.mappings(spec.mappings);
  panel.thresholds(thresholdsOf(spec.steps));
  for (const o of spec.overrides ?? []) {
    if (o.name !== undefined) panel.overrideByName(o.name, o.properties);
    else if (o.regexp !== undefined) panel.overrideByRegexp(o.regexp, o.properties);
  }
  return panel;
}

// ---- panels ----

const COLOR_MODE = {
  value: common.BigValueColorMode.Value,
  background: common.BigValueColorMode.Background,
} as const;
const GRAPH_MODE = {
  area: common.BigValueGraphMode.Area,
  none: common.BigValueGraphMode.None,
} as const;
const TEXT_MODE = {
  auto: common.BigValueTextMode.Auto,
  value_and_name: common.BigValueTextMode.ValueAndName,
} as const;
const ORIENTATION = {
  auto: common.VizOrientation.Auto,
  horizontal: common.VizOrientation.Horizontal,
  vertical: common.VizOrientation.Vertical,
} as const;

export function stat(
  spec: PanelSpec & {
    colorMode?: keyof typeof COLOR_MODE;
    graphMode?: keyof typeof GRAPH_MODE;
    textMode?: keyof typeof TEXT_MODE;
    orientation?: keyof typeof ORIENTATION;
  }
): statPanel.PanelBuilder {
  return applyCommon(new statPanel.PanelBuilder(), spec)
    .reduceOptions(lastNotNull())
    .colorMode(COLOR_MODE[spec.colorMode ?? 'value'])
    .graphMode(GRAPH_MODE[spec.graphMode ?? 'area'])
    .justifyMode(common.BigValueJustifyMode.Auto)
    .orientation(ORIENTATION[spec.orientation ?? 'auto'])
    .textMode(TEXT_MODE[spec.textMode ?? 'auto']);
}

const THRESHOLDS_STYLE = {
  line: common.GraphThresholdsStyleMode.Line,
  dashed: common.GraphThresholdsStyleMode.Dashed,
  'line+area': common.GraphThresholdsStyleMode.LineAndArea,
} as const;

export function timeseries(
  spec: PanelSpec & {
    /** How the thresholds are drawn on the graph; not at all when absent. */
    thresholdsStyle?: keyof typeof THRESHOLDS_STYLE;
    drawStyle?: 'line' | 'bars';
    fillOpacity?: number;
    stacked?: boolean;
    tooltipSort?: 'desc' | 'none';
  }
): timeseriesPanel.PanelBuilder {
  const panel = applyCommon(new timeseriesPanel.PanelBuilder(), spec)
    .colorScheme(new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.PaletteClassic))
    .drawStyle(spec.drawStyle === 'bars' ? common.GraphDrawStyle.Bars : common.GraphDrawStyle.Line)
    .lineWidth(1)
    .fillOpacity(spec.fillOpacity ?? 10)
    .showPoints(common.VisibilityMode.Never)
    .spanNulls(false)
    .legend(
      new common.VizLegendOptionsBuilder()
        .displayMode(common.LegendDisplayMode.List)
        .placement(common.LegendPlacement.Bottom)
        .showLegend(true)
    )
    .tooltip(
      new common.VizTooltipOptionsBuilder()
        .mode(common.TooltipDisplayMode.Multi)
        .sort(spec.tooltipSort === 'none' ? common.SortOrder.None : common.SortOrder.Descending)
    );
  if (spec.thresholdsStyle)
    panel.thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(THRESHOLDS_STYLE[spec.thresholdsStyle]));
  if (spec.stacked) panel.stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal).group('A'));
  return panel;
}

export function bargauge(
  spec: PanelSpec & {
    orientation: 'horizontal' | 'vertical';
    displayMode: 'gradient' | 'basic';
    /** A continuous colour scheme instead of the threshold colours. */
    color?: dashboard.FieldColorModeId;
  }
): bargaugePanel.PanelBuilder {
  const panel = applyCommon(new bargaugePanel.PanelBuilder(), spec)
    .orientation(ORIENTATION[spec.orientation])
    .displayMode(spec.displayMode === 'basic' ? common.BarGaugeDisplayMode.Basic : common.BarGaugeDisplayMode.Gradient)
    .showUnfilled(true)
    .reduceOptions(lastNotNull());
  if (spec.color) panel.colorScheme(new dashboard.FieldColorBuilder().mode(spec.color));
  return panel;
}

export function gauge(spec: PanelSpec): gaugePanel.PanelBuilder {
  return applyCommon(new gaugePanel.PanelBuilder(), spec)
    .reduceOptions(lastNotNull())
    .showThresholdMarkers(true)
    .showThresholdLabels(false);
}

export function table(
  spec: PanelSpec & {
    sortBy: { displayName: string; desc: boolean };
    transformations: dashboard.DataTransformerConfig[];
  }
): tablePanel.PanelBuilder {
  return applyCommon(new tablePanel.PanelBuilder(), spec)
    .align(common.FieldTextAlignment.Auto)
    .cellOptions({ type: common.TableCellDisplayMode.Auto })
    .showHeader(true)
    .cellHeight(common.TableCellHeight.Sm)
    .footer(new common.TableFooterOptionsBuilder().show(false).reducer(['sum']))
    .sortBy([new common.TableSortByFieldStateBuilder().displayName(spec.sortBy.displayName).desc(spec.sortBy.desc)])
    .transformations(spec.transformations);
}

// ---- dashboards ----

export interface DashboardSpec {
  uid: string;
  title: string;
  description: string;
  /** Start of the default time range (`now-6h` unless said). */
  from?: string;
  variables?: dashboard.QueryVariableBuilder[];
}

/**
 * A Control Room dashboard: read-only (provisioned from this repository), UTC, 30 s refresh, shared
 * crosshair, tagged `controlroom` with a drop-down link to the others. Panels keep the positions their
 * specs give (the SDK only auto-places panels without one).
 */
export function controlRoomDashboard(
  spec: DashboardSpec,
  panels: ReadonlyArray<cog.Builder<dashboard.Panel>>
): dashboard.Dashboard {
  const builder = new dashboard.DashboardBuilder(spec.title)
    .uid(spec.uid)
    .description(spec.description)
    .tags(['controlroom'])
    .version(1)
    .readonly()
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .timezone('utc')
    .refresh('30s')
    .time({ from: spec.from ?? 'now-6h', to: 'now' })
    .fiscalYearStartMonth(0)
    .liveNow(false)
    .annotations([])
    .link(
      new dashboard.DashboardLinkBuilder('Control Room')
        .type(dashboard.DashboardLinkType.Dashboards)
        .tags(['controlroom'])
        .asDropdown(true)
        .includeVars(false)
        .keepTime(true)
    )
    .variables(spec.variables ?? []);
  for (const panel of panels) builder.withPanel(panel);
  const built = builder.build();
  built.schemaVersion = SCHEMA_VERSION;
  return built;
}

/**
 * A 0/1 series as red Down / green Up tiles (a scrape target, a region's health check): one tile per
 * series, coloured by its background.
 */
export function upDownStat(spec: {
  id: number;
  title: string;
  at: [number, number, number, number];
  expr: string;
  legend: string;
  description?: string;
  /** Also print each tile's series name (several tiles side by side). */
  named?: boolean;
}) {
  return stat({
    id: spec.id,
    title: spec.title,
    ...(spec.description === undefined ? {} : { description: spec.description }),
    at: spec.at,
    queries: [{ expr: spec.expr, legend: spec.legend }],
    steps: [
      ['red', null],
      ['green', 1],
    ],
    mappings: [
      valueText([
        [0, 'Down', 'red'],
        [1, 'Up', 'green'],
      ]),
    ],
    colorMode: 'background',
    graphMode: 'none',
    ...(spec.named ? { textMode: 'value_and_name' as const } : {}),
  });
}

/** Each region's health check as Up/Down tiles: the Regions dashboard's first panel, repeated on the executive one. */
export function regionHealth(spec: { id: number; at: [number, number, number, number]; description?: string }) {
  return upDownStat({
    ...spec,
    title: 'Region health',
    expr: 'max without (instance) (tms_region_up)',
    legend: '{{region}}',
    named: true,
  });
}
