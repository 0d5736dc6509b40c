import fs from 'node:fs/promises';
import path from 'node:path';
import { incidentsForPeriod, type IncidentRecord } from '../alerting/incidents/evidence.ts';
import { projectRoot } from '../core/config.ts';
import { appendAll } from '../core/arrays.ts';
import type { Pool } from '../core/db.ts';
import { requireSigningKey } from './config.ts';
import {
  listFiles,
  MANIFEST_FILE,
  SIGNATURE_ALGORITHM,
  SIGNATURE_FILE,
  sha256,
  sign,
  type Manifest,
} from './manifest.ts';

/**
 * Audit-evidence bundle for a period: Grafana dashboard snapshots with the Prometheus query results embedded
 * (importable with POST /api/snapshots), the audit log and freeze / failover / drill records, the period's
 * incidents with their SLA times and breaches, a SOC 2 evidence matrix, and a manifest of sha256 hashes signed
 * with HMAC-SHA256.
 */
export interface ExportOptions {
  pool: Pool;
  prometheusUrl: string;
  dashboardsDir: string;
  /** Dashboard uids. */
  dashboards: string[];
  from: Date;
  /** Exclusive. */
  to: Date;
  outDir: string;
  signingKey: string | undefined;
  /** Most points per series (the step is chosen from it). */
  maxPoints?: number;
  fetch?: typeof fetch;
  now?: () => Date;
}

export interface ExportResult {
  outDir: string;
  files: string[];
  stepSeconds: number;
  records: Record<string, number>;
  /** Panel targets whose query returned no series ("file #panel refId"). */
  emptyTargets: string[];
}

interface Target {
  refId?: string;
  expr?: string;
  legendFormat?: string;
  instant?: boolean;
  range?: boolean;
  format?: string;
  hide?: boolean;
  datasource?: unknown;
  [key: string]: unknown;
}
interface Panel {
  id?: number;
  type?: string;
  title?: string;
  datasource?: unknown;
  targets?: Target[];
  panels?: Panel[];
  snapshotData?: DataFrame[];
  [key: string]: unknown;
}
interface TemplateVariable {
  name: string;
  type: string;
  current?: { text?: unknown; value?: unknown };
  options?: unknown[];
  [key: string]: unknown;
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating?: { list: TemplateVariable[] };
  [key: string]: unknown;
}
interface Field {
  name: string;
  type: 'time' | 'number' | 'string';
  values: Array<number | string | null>;
  labels?: Record<string, string>;
  config: Record<string, unknown>;
}
export interface DataFrame {
  name?: string;
  refId: string;
  fields: Field[];
  meta?: Record<string, unknown>;
}
interface PromSeries {
  metric: Record<string, string>;
  values?: Array<[number, string]>;
  value?: [number, string];
}

export const SNAPSHOT_DATASOURCE = { type: 'datasource', uid: 'grafana' } as const;

/** Record files: table, timestamp column, file name. */
export const RECORD_SOURCES = [
  { file: 'records/audit_log.jsonl', table: 'audit_log', column: 'ts' },
  { file: 'records/freeze_history.jsonl', table: 'controlroom.freeze_history', column: 'at' },
  { file: 'records/freeze_actions.jsonl', table: 'controlroom.freeze_actions', column: 'created_at' },
  { file: 'records/failover_events.jsonl', table: 'controlroom.failover_events', column: 'started_at' },
  { file: 'records/failover_drills.jsonl', table: 'controlroom.failover_drills', column: 'started_at' },
] as const;

/** Audit actions counted as evidence per criterion (prefix match when ending in "."). */
const ALERT_ACTIONS = ['slack.', 'overage.', 'alert.', 'page', 'ticket', 'freeze'];
const CHANGE_ACTIONS = ['release_freeze.', 'github.'];
const RECOVERY_ACTIONS = ['failover.'];
/** Alert groups triaged into incidents, paged, escalated and acknowledged (CC7.3). */
const INCIDENT_EVALUATION_ACTIONS = [
  'incident.opened',
  'slack.page_posted',
  'slack.page_escalated',
  'slack.page_acknowledged',
  'slack.page_folded_into_storm',
];
/** Incidents contained and closed: resolutions, the release freeze, notify_ops tasks (CC7.4). */
const INCIDENT_RESPONSE_ACTIONS = [
  'incident.resolved',
  'slack.page_resolved_by_user',
  'release_freeze.',
  'overage.notify_ops_created',
];
/** The period's incidents (records/incidents.jsonl), written beside the table records. */
export const INCIDENTS_FILE = 'records/incidents.jsonl';

export async function toolVersion(): Promise<{ name: string; version: string }> {
  const pkg = JSON.parse(await fs.readFile(path.join(projectRoot, 'package.json'), 'utf8')) as {
    name?: string;
    version?: string;
  };
  return { name: pkg.name ?? 'controlroom', version: pkg.version ?? '0.0.0' };
}

/** Seconds per point so a range query returns at most maxPoints points (whole seconds, at least 1). */
export function chooseStep(from: Date, to: Date, maxPoints = 1000): number {
  const seconds = (to.getTime() - from.getTime()) / 1000;
  return Math.max(1, Math.ceil(seconds / maxPoints));
}

/** Grafana's built-in and dashboard variables, resolved for the export period. */
export function substituteVariables(
  expr: string,
  vars: Record<string, string | string[]>,
  stepSeconds: number,
  rangeSeconds: number
): string {
  const builtins: Record<string, string> = {
    __rate_interval: `${Math.max(4 * stepSeconds, 60)}s`,
    __interval: `${stepSeconds}s`,
    __interval_ms: String(stepSeconds * 1000),
    __range: `${Math.max(1, Math.round(rangeSeconds))}s`,
    __range_s: String(Math.max(1, Math.round(rangeSeconds))),
    __range_ms: String(Math.max(1, Math.round(rangeSeconds)) * 1000),
  };
  const format = (value: string | string[], fmt: string | undefined): string => {
    const list = Array.isArray(value) ? value : [value];
    const escape = (v: string) => v.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
    if (fmt === 'raw' || fmt === 'text') return list.join(',');
    if (fmt === 'csv') return list.join(',');
    if (fmt === 'pipe') return list.join('|');
    // Prometheus' default (and :regex): one value verbatim, several as an escaped alternation.
    if (list.length === 1 && fmt !== 'regex') return list[0]!;
    const joined = list.map(escape).join('|');
    return list.length > 1 ? `(${joined})` : joined;
  };
  const all: Record<string, string | string[]> = { ...vars, ...builtins };
  return expr.replace(/\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]|\$(\w+)/g, (match, a, af, b, bf, c) => {
    const name = (a ?? b ?? c) as string;
    const value = all[name];
    return value === undefined ? match : format(value, (af ?? bf) as string | undefined);
  });
}

/** Defaults of the dashboard's template variables: the saved current value ($__all → .*). */
export function variableDefaults(dashboard: Dashboard): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const v of dashboard.templating?.list ?? []) {
    const value = v.current?.value;
    const values = (Array.isArray(value) ? value : value === undefined || value === null ? [] : [value]).map(String);
    if (values.length === 0) continue;
    out[v.name] = values.includes('$__all') ? '.*' : values.length === 1 ? values[0]! : values;
  }
  return out;
}

/** Grafana's legend format: {{label}} replaced by the label's value. */
function displayName(series: PromSeries, legendFormat: string | undefined): string {
  if (legendFormat && legendFormat !== '__auto') {
    return legendFormat.replace(/\{\{\s*(.+?)\s*\}\}/g, (_m, label: string) => series.metric[label] ?? '');
  }
  const { __name__: name, ...labels } = series.metric;
  const inner = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(', ');
  return inner ? `${name ?? ''}{${inner}}` : (name ?? 'Value');
}

const toNumber = (s: string): number | null => {
  const n = Number(s);
  return Number.isFinite(n) ? n : null; // NaN and ±Inf have no JSON form
};

/** One frame per series (time series format), or one wide frame (table format), as Grafana stores them. */
export function toFrames(result: PromSeries[], target: Target, executedExpr: string): DataFrame[] {
  const refId = target.refId ?? 'A';
  const meta = { executedQueryString: `Expr: ${executedExpr}` };
  if (target.format === 'table') {
    const labelNames = [...new Set(result.flatMap((s) => Object.keys(s.metric)))].sort();
    const rows = result.flatMap((s) => (s.values ?? (s.value ? [s.value] : [])).map((p) => ({ s, p })));
    return [
      {
        refId,
        meta,
        fields: [
          { name: 'Time', type: 'time', config: {}, values: rows.map(({ p }) => Math.round(p[0] * 1000)) },
          ...labelNames.map<Field>((l) => ({
            name: l,
            type: 'string',
            config: {},
            values: rows.map(({ s }) => s.metric[l] ?? ''),
          })),
          { name: `Value #${refId}`, type: 'number', config: {}, values: rows.map(({ p }) => toNumber(p[1])) },
        ],
      },
    ];
  }
  return result.map((series) => {
    const points = series.values ?? (series.value ? [series.value] : []);
    const name = displayName(series, target.legendFormat);
    return {
      name,
      refId,
      meta,
      fields: [
        { name: 'Time', type: 'time', config: {}, values: points.map((p) => Math.round(p[0] * 1000)) },
        {
          name,
          type: 'number',
          labels: series.metric,
          config: { displayNameFromDS: name },
          values: points.map((p) => toNumber(p[1])),
        },
      ],
    };
  });
}

async function promQuery(
  fetchFn: typeof fetch,
  baseUrl: string,
  kind: 'query' | 'query_range',
  params: Record<string, string>
): Promise<PromSeries[]> {
  const url = `${baseUrl.replace(/\/+$/, '')}/api/v1/${kind}`;
  let res: Response;
  try {
    res = await fetchFn(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params).toString(),
      signal: AbortSignal.timeout(60_000),
    });
  } catch (error) {
    throw new Error(
      `Prometheus at ${baseUrl} is unreachable: ${error instanceof Error ? error.message : String(error)}`
    );
  }
  const text = await res.text();
  let body: { status?: string; error?: string; data?: { resultType?: string; result?: PromSeries[] } };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new Error(`Prometheus ${kind} answered ${res.status}: ${text.slice(0, 200)}`);
  }
  if (body.status !== 'success')
    throw new Error(`Prometheus ${kind} of ${params.query} failed: ${body.error ?? res.status}`);
  const result = body.data?.result ?? [];
  // A scalar or string result is [time, value], not a list of series.
  if (body.data?.resultType === 'scalar' || body.data?.resultType === 'string') {
    const [t, v] = result as unknown as [number, string];
    return [{ metric: {}, value: [t, v] }];
  }
  return result;
}

const allPanels = (panels: Panel[]): Panel[] => panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);

async function loadDashboard(dir: string, uid: string): Promise<{ file: string; dashboard: Dashboard }> {
  const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  for (const file of files) {
    const dashboard = JSON.parse(await fs.readFile(path.join(dir, file), 'utf8')) as Dashboard;
    if (dashboard.uid === uid) return { file, dashboard };
  }
  throw new Error(`no dashboard with uid ${uid} in ${dir}`);
}

interface QueryLogEntry {
  panel: number | undefined;
  title: string | undefined;
  refId: string;
  expr: string;
  executed: string;
  kind: 'range' | 'instant';
  series: number;
  points: number;
}

/** The POST /api/snapshots body for one dashboard over the period, with each panel's results embedded. */
export async function buildSnapshot(options: {
  dashboard: Dashboard;
  prometheusUrl: string;
  from: Date;
  to: Date;
  stepSeconds: number;
  fetch: typeof fetch;
}): Promise<{ body: Record<string, unknown>; queries: QueryLogEntry[] }> {
  const { from, to, stepSeconds } = options;
  const dashboard = structuredClone(options.dashboard);
  const vars = variableDefaults(dashboard);
  const rangeSeconds = (to.getTime() - from.getTime()) / 1000;
  // The range end is exclusive for records; for metrics the last point is at or before `to`.
  const start = from.getTime() / 1000;
  const end = to.getTime() / 1000;
  const queries: QueryLogEntry[] = [];

  for (const panel of allPanels(dashboard.panels)) {
    if (!panel.targets) continue;
    const frames: DataFrame[] = [];
    for (const target of panel.targets) {
      if (target.hide || !target.expr) continue;
      const executed = substituteVariables(target.expr, vars, stepSeconds, rangeSeconds);
      const instant = target.instant === true && target.range !== true;
      const result = instant
        ? await promQuery(options.fetch, options.prometheusUrl, 'query', { query: executed, time: String(end) })
        : await promQuery(options.fetch, options.prometheusUrl, 'query_range', {
            query: executed,
            start: String(start),
            end: String(end),
            step: String(stepSeconds),
          });
      const targetFrames = toFrames(result, target, executed);
      appendAll(frames, targetFrames);
      queries.push({
        panel: panel.id,
        title: panel.title,
        refId: target.refId ?? 'A',
        expr: target.expr,
        executed,
        kind: instant ? 'instant' : 'range',
        series: result.length,
        points: result.reduce((n, s) => n + (s.values?.length ?? (s.value ? 1 : 0)), 0),
      });
    }
    // What Grafana does when it takes a snapshot: the data travels with the panel, the queries do not run again.
    panel.snapshotData = frames;
    panel.datasource = { ...SNAPSHOT_DATASOURCE };
    panel.targets = panel.targets.map((t) => ({ refId: t.refId ?? 'A', datasource: { ...SNAPSHOT_DATASOURCE } }));
    delete panel.links;
  }

  // Variables are frozen at the values the queries used.
  for (const v of dashboard.templating?.list ?? []) {
    const value = vars[v.name];
    if (value === undefined) continue;
    const text = Array.isArray(value) ? value.join(' + ') : value;
    v.current = { text, value };
    v.options = [{ selected: true, text, value }];
    if (v.type === 'query') v.datasource = { ...SNAPSHOT_DATASOURCE };
  }
  dashboard.id = null;
  dashboard.time = { from: from.toISOString(), to: to.toISOString() };
  dashboard.refresh = '';
  dashboard.snapshot = { timestamp: new Date().toISOString() };

  const name = `${dashboard.title} ${from.toISOString()} – ${to.toISOString()} (audit evidence)`;
  return { body: { dashboard, name, expires: 0 }, queries };
}

/** Rows of one table whose timestamp is in [from, to), oldest first; a missing table is a clear error. */
async function exportRecords(
  pool: Pool,
  source: (typeof RECORD_SOURCES)[number],
  from: Date,
  to: Date
): Promise<Record<string, unknown>[]> {
  try {
    const { rows } = await pool.query<Record<string, unknown>>(
      `SELECT * FROM ${source.table} WHERE ${source.column} >= $1 AND ${source.column} < $2 ORDER BY ${source.column}, id`,
      [from, to]
    );
    return rows;
  } catch (error) {
    if ((error as { code?: string }).code === '42P01') {
      throw new Error(`table ${source.table} does not exist: run "controlroom migrate" against this database first`);
    }
    throw error;
  }
}

const jsonl = (rows: Record<string, unknown>[]) =>
  rows.map((r) => JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).join('\n') +
  (rows.length ? '\n' : '');

const matches = (action: string, selectors: string[]) =>
  selectors.some((s) => (s.endsWith('.') ? action.startsWith(s) : action === s));

interface MatrixEntry {
  criterion: string;
  title: string;
  files: Array<{ path: string; shows: string }>;
  audit_actions?: { selectors: string[]; count: number };
  records?: Record<string, number>;
  gaps: string[];
  /** What of the criterion Control Room does not evidence at all (CC1–CC5 are mostly organisational). */
  not_covered?: string[];
  /** What the evidence shows went wrong in the period (an incident past its SLA), for the auditor to follow up. */
  findings?: string[];
}

/** Audit actions that show who changed what in the controls themselves (CC1.5 accountability, CC5.2/CC5.3). */
const ACCESS_ACTIONS = ['failover.', 'release_freeze.', 'pricing_model.', 'bulk_rating.'];
const MODEL_ACTIONS = ['pricing_model.'];
const POLICY_ACTIONS = ['release_freeze.'];
const COMMUNICATION_ACTIONS = ['slack.', 'github.'];
const MONITORING_ACTIONS = [
  'failover.drill',
  'failover.gameday',
  'failover.integrity_passed',
  'failover.integrity_failed',
  'evidence.',
];

/**
 * The organisation and risk controls (CC1–CC5), mapped to what Control Room can show. They are mostly
 * about people, policies and governance, which no monitoring tool evidences: each entry says plainly what
 * it does not cover.
 */
function organisationalMatrix(
  countAudit: (selectors: string[]) => number,
  has: (uid: string) => boolean
): MatrixEntry[] {
  return [
    {
      criterion: 'CC1',
      title: 'Control environment: accountability for controls',
      files: [
        {
          path: 'records/audit_log.jsonl',
          shows:
            'Every control action (failover, freeze, pricing model, bulk rating) attributed to a named Grafana user or system actor, with role, IP address and user agent (CC1.5).',
        },
      ],
      audit_actions: { selectors: ACCESS_ACTIONS, count: countAudit(ACCESS_ACTIONS) },
      gaps: [],
      not_covered: [
        'integrity and ethical values, code of conduct (CC1.1)',
        'board independence and oversight (CC1.2)',
        'organisational structure and reporting lines (CC1.3)',
        'hiring, training and retaining competent people (CC1.4)',
        "changes of Grafana users, roles and teams: they are kept in Grafana's own audit log, not here",
      ],
    },
    {
      criterion: 'CC2',
      title: 'Communication and information: incidents and release state are communicated',
      files: [
        {
          path: 'records/audit_log.jsonl',
          shows:
            'Audit entries slack.* and github.*: pages posted, escalated and acknowledged; freeze statuses published on pull requests (CC2.2).',
        },
        ...(has('controlroom-slo')
          ? [
              {
                path: 'snapshots/controlroom-slo.json',
                shows: 'The quality information the controls act on: SLIs, burn rates and budgets (CC2.1).',
              },
            ]
          : []),
      ],
      audit_actions: { selectors: COMMUNICATION_ACTIONS, count: countAudit(COMMUNICATION_ACTIONS) },
      gaps: [],
      not_covered: [
        'communication of policies and responsibilities to staff (CC2.2)',
        'communication with customers, regulators and other external parties (CC2.3)',
        'whistle-blower channels',
      ],
    },
    {
      criterion: 'CC3',
      title: 'Risk assessment: reliability risk tolerance is defined and enforced',
      files: [
        {
          path: 'records/freeze_history.jsonl',
          shows:
            'The error-budget policy in force: releases frozen while reliability risk is above tolerance (CC3.1, CC3.4).',
        },
        {
          path: 'records/failover_drills.jsonl',
          shows: 'Outage risk tested: drills and game days judged against the RTO / RPO targets.',
        },
      ],
      audit_actions: { selectors: POLICY_ACTIONS, count: countAudit(POLICY_ACTIONS) },
      gaps: [],
      not_covered: [
        'the organisation-wide risk assessment and its objectives (CC3.1, CC3.2)',
        'fraud risk (CC3.3)',
        'vendor and business-partner risk',
      ],
    },
    {
      criterion: 'CC4',
      title: 'Monitoring activities: controls are evaluated and deficiencies raised',
      files: [
        {
          path: 'records/failover_drills.jsonl',
          shows: 'Recurring evaluations of the recovery controls: drills and game days with outcome (CC4.1).',
        },
        {
          path: 'records/failover_events.jsonl',
          shows:
            'Post-cutover integrity checks (invoices, agent queue, API error rate) recorded with each cutover; a failure pages (CC4.2).',
        },
        {
          path: 'records/audit_log.jsonl',
          shows:
            'Audit entries failover.drill, failover.gameday, failover.integrity_* and evidence.*: evaluations run and this weekly evidence itself.',
        },
      ],
      audit_actions: { selectors: MONITORING_ACTIONS, count: countAudit(MONITORING_ACTIONS) },
      gaps: [],
      not_covered: [
        'internal audit and management reviews of the controls (CC4.1)',
        'tracking of deficiencies to remediation outside Control Room (CC4.2)',
      ],
    },
    {
      criterion: 'CC5',
      title: 'Control activities: controls are implemented as code and changes are recorded',
      files: [
        {
          path: 'records/audit_log.jsonl',
          shows:
            'Audit entries pricing_model.* (model registry: registered, activated, promoted, rolled back) and release_freeze.* (the freeze policy acting) (CC5.2, CC5.3).',
        },
        { path: 'records/freeze_actions.jsonl', shows: 'Manual freezes and overrides: who, why, until when (CC5.3).' },
      ],
      audit_actions: {
        selectors: [...MODEL_ACTIONS, ...POLICY_ACTIONS],
        count: countAudit([...MODEL_ACTIONS, ...POLICY_ACTIONS]),
      },
      gaps: [],
      not_covered: [
        'written policies and procedures and their deployment to staff (CC5.3)',
        'segregation of duties beyond the Viewer / Editor / Admin roles of the control API',
        'technology general controls of systems other than Control Room (CC5.2)',
      ],
    },
  ];
}

/** CC7.3 and CC7.4 from the period's incidents: triage and acknowledgement, then response and resolution. */
function incidentMatrix(
  incidents: IncidentRecord[],
  countAudit: (selectors: string[]) => number,
  has: (uid: string) => boolean
): MatrixEntry[] {
  const dashboard = has('controlroom-incidents')
    ? [
        {
          path: 'snapshots/controlroom-incidents.json',
          shows:
            'The Incident response dashboard over the period: open incidents, past-SLA incidents, time to acknowledge and resolve, breaches by severity.',
        },
      ]
    : [];
  const breached = (stage: 'acknowledge' | 'resolve') => incidents.filter((i) => i.breaches.includes(stage));
  const finding = (i: IncidentRecord, stage: 'acknowledge' | 'resolve') => {
    const done = stage === 'acknowledge' ? i.acknowledged_at : i.resolved_at;
    const due = stage === 'acknowledge' ? i.acknowledge_by : i.resolve_by;
    return `incident ${i.id} (${i.severity}, ${i.alertnames.join(', ')}, paged ${i.paged_at}) was ${done ? `${stage}d at ${done}` : `not ${stage}d by the period's end`}, due ${due}`;
  };
  const bySeverity = (list: IncidentRecord[]) =>
    Object.fromEntries((['P1', 'P2', 'P3'] as const).map((s) => [s, list.filter((i) => i.severity === s).length]));
  return [
    {
      criterion: 'CC7.3',
      title:
        'Incident evaluation: alerts are triaged into incidents by severity, paged and acknowledged within the SLA',
      files: [
        {
          path: INCIDENTS_FILE,
          shows:
            'Every incident (alert group) active in the period: severity, when it was paged, the acknowledge deadline (P1 4 h, P2 1 business day, P3 3 business days), who acknowledged it and when, and breaches.',
        },
        {
          path: 'records/audit_log.jsonl',
          shows:
            'Audit entries incident.opened and slack.page_*: incidents opened, pages posted, escalated and acknowledged, with actor and time.',
        },
        ...dashboard,
      ],
      audit_actions: { selectors: INCIDENT_EVALUATION_ACTIONS, count: countAudit(INCIDENT_EVALUATION_ACTIONS) },
      records: {
        incidents: incidents.length,
        ...Object.fromEntries(Object.entries(bySeverity(incidents)).map(([s, n]) => [`incidents_${s}`, n])),
        acknowledged: incidents.filter((i) => i.acknowledged_at).length,
        acknowledge_breaches: breached('acknowledge').length,
      },
      gaps: [],
      findings: breached('acknowledge').map((i) => finding(i, 'acknowledge')),
      not_covered: [
        'security events that never raise a Prometheus or Grafana alert (they are not paged through Control Room)',
      ],
    },
    {
      criterion: 'CC7.4',
      title: 'Incident response: incidents are contained and resolved within the SLA',
      files: [
        {
          path: INCIDENTS_FILE,
          shows:
            'Resolution of each incident: when and how (every alert resolved, or Resolve pressed by a named person), the resolve deadline, and breaches.',
        },
        {
          path: 'records/freeze_history.jsonl',
          shows: 'Containment: releases frozen while an SLO page or the error budget called for it.',
        },
        {
          path: 'records/audit_log.jsonl',
          shows:
            'Audit entries incident.resolved, slack.page_resolved_by_user, release_freeze.* and overage.notify_ops_created: the actions taken.',
        },
        ...dashboard,
      ],
      audit_actions: { selectors: INCIDENT_RESPONSE_ACTIONS, count: countAudit(INCIDENT_RESPONSE_ACTIONS) },
      records: {
        incidents: incidents.length,
        resolved: incidents.filter((i) => i.resolved_at).length,
        open_at_period_end: incidents.filter((i) => !i.resolved_at).length,
        resolve_breaches: breached('resolve').length,
      },
      gaps: [],
      findings: breached('resolve').map((i) => finding(i, 'resolve')),
      not_covered: [
        'post-incident reviews and remediation tracking (kept outside Control Room)',
        'notification of affected customers and regulators',
      ],
    },
  ];
}

function buildMatrix(args: {
  dashboards: string[];
  records: Record<string, Record<string, unknown>[]>;
  incidents: IncidentRecord[];
  from: Date;
  to: Date;
}): MatrixEntry[] {
  const audit = args.records['records/audit_log.jsonl'] ?? [];
  const countAudit = (selectors: string[]) => audit.filter((r) => matches(String(r.action), selectors)).length;
  const snap = (uid: string) => `snapshots/${uid}.json`;
  const has = (uid: string) => args.dashboards.includes(uid);
  const count = (file: string) => (args.records[file] ?? []).length;

  const monitoring = ['controlroom-slo', 'controlroom-self', 'controlroom-executive', 'controlroom-usage'].filter(has);
  const cc72: MatrixEntry = {
    criterion: 'CC7.2',
    title: 'System monitoring: anomalies and failures are detected and acted on',
    files: [
      ...monitoring.map((uid) => ({
        path: snap(uid),
        shows: {
          'controlroom-slo':
            'Error budget, burn rates and firing SLO alerts over the period, from the monitoring system itself.',
          'controlroom-self': 'Self-monitoring: exporter, alert receiver and agent queue health over the period.',
          'controlroom-executive': 'SLO attainment cards and the release-freeze state over the period.',
          'controlroom-usage': 'Tenant usage against plan limits over the period.',
        }[uid]!,
      })),
      {
        path: 'records/audit_log.jsonl',
        shows: 'Alert actions taken (pages, tickets, escalations, overage tasks) with actor and time.',
      },
    ],
    audit_actions: { selectors: ALERT_ACTIONS, count: countAudit(ALERT_ACTIONS) },
    gaps: monitoring.length === 0 ? ['no monitoring dashboard (controlroom-slo or controlroom-self) was exported'] : [],
  };
  const cc81: MatrixEntry = {
    criterion: 'CC8.1',
    title: 'Change management: releases are gated while reliability is at risk',
    files: [
      {
        path: 'records/freeze_history.jsonl',
        shows: 'Every change of the release-freeze state (frozen/unfrozen, cause, reason).',
      },
      { path: 'records/freeze_actions.jsonl', shows: 'Manual freezes and overrides with who, why and until when.' },
      {
        path: 'records/audit_log.jsonl',
        shows:
          'Audit entries release_freeze.* and github.* : freeze decisions and the commit statuses set on pull requests.',
      },
    ],
    audit_actions: { selectors: CHANGE_ACTIONS, count: countAudit(CHANGE_ACTIONS) },
    records: {
      freeze_history: count('records/freeze_history.jsonl'),
      freeze_actions: count('records/freeze_actions.jsonl'),
    },
    gaps: [],
  };
  const a12: MatrixEntry = {
    criterion: 'A1.2',
    title: 'Availability: recovery infrastructure is monitored and operated',
    files: [
      ...(has('controlroom-regions')
        ? [
            {
              path: snap('controlroom-regions'),
              shows: 'Region health, traffic weights, replication lag and write freeze over the period.',
            },
          ]
        : []),
      {
        path: 'records/failover_events.jsonl',
        shows: 'Every failover and traffic shift (automatic, manual, drill) with actor, reason and outcome.',
      },
      {
        path: 'records/audit_log.jsonl',
        shows: 'Audit entries failover.* : requests, lease changes, write freezes and completions.',
      },
    ],
    audit_actions: { selectors: RECOVERY_ACTIONS, count: countAudit(RECOVERY_ACTIONS) },
    records: { failover_events: count('records/failover_events.jsonl') },
    gaps: has('controlroom-regions') ? [] : ['the controlroom-regions dashboard was not exported'],
  };
  const drills = args.records['records/failover_drills.jsonl'] ?? [];
  const a13: MatrixEntry = {
    criterion: 'A1.3',
    title: 'Recovery plan testing: failover drills with measured RTO and RPO',
    files: [
      {
        path: 'records/failover_drills.jsonl',
        shows: 'Failover drills run in the period with outcome, RTO and RPO seconds and writes lost.',
      },
    ],
    records: {
      failover_drills: drills.length,
      passed: drills.filter((d) => d.outcome === 'passed').length,
      failed: drills.filter((d) => d.outcome === 'failed').length,
    },
    gaps: drills.length === 0 ? ['no failover drill was run in the period'] : [],
  };
  return [
    ...organisationalMatrix(countAudit, has),
    cc72,
    ...incidentMatrix(args.incidents, countAudit, has),
    cc81,
    a12,
    a13,
  ];
}

function matrixMarkdown(matrix: MatrixEntry[], from: Date, to: Date, dashboards: string[]): string {
  const lines = [
    '# Audit evidence matrix',
    '',
    `Period: ${from.toISOString()} to ${to.toISOString()} (end exclusive). Dashboards: ${dashboards.join(', ')}.`,
    '',
    'Every file below is listed with its sha256 in `manifest.json`, which is signed (HMAC-SHA256) in `manifest.sig`;',
    'check the bundle with `controlroom evidence verify <dir>`. Snapshots import into Grafana with `POST /api/snapshots`.',
    '',
  ];
  for (const entry of matrix) {
    lines.push(`## ${entry.criterion}: ${entry.title}`, '', '| file | what it shows |', '| --- | --- |');
    for (const f of entry.files) lines.push(`| \`${f.path}\` | ${f.shows.replace(/\|/g, '\\|')} |`);
    lines.push('');
    if (entry.audit_actions) {
      lines.push(
        `Audit entries matching ${entry.audit_actions.selectors.map((s) => `\`${s.endsWith('.') ? `${s}*` : s}\``).join(', ')}: ${entry.audit_actions.count}.`
      );
    }
    if (entry.records)
      lines.push(
        `Records: ${Object.entries(entry.records)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}.`
      );
    for (const gap of entry.gaps) lines.push(`**Gap:** ${gap}.`);
    for (const finding of entry.findings ?? []) lines.push(`**Finding:** ${finding}.`);
    if (entry.not_covered?.length) lines.push(`**Not covered by Control Room:** ${entry.not_covered.join('; ')}.`);
    lines.push('');
  }
  return lines.join('\n');
}

async function writeFile(outDir: string, rel: string, content: string): Promise<void> {
  const full = path.join(outDir, rel);
  await fs.mkdir(path.dirname(full), { recursive: true });
  await fs.writeFile(full, content, { flag: 'wx' });
}

export async function exportEvidence(options: ExportOptions): Promise<ExportResult> {
  const key = requireSigningKey(options.signingKey);
  const { from, to, outDir } = options;
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()))
    throw new Error('--from and --to must be valid ISO timestamps');
  if (from.getTime() >= to.getTime()) throw new Error('--from must be before --to');
  const uids = [...new Set(options.dashboards)];
  if (uids.length === 0) throw new Error('name at least one dashboard uid (--dashboard)');
  const fetchFn = options.fetch ?? fetch;
  const now = options.now ?? (() => new Date());

  // Never mix a new bundle into an old one: the directory must be new or empty.
  const existing = await fs.readdir(outDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  if (existing.length > 0) throw new Error(`output directory ${outDir} is not empty`);
  const staging = await createStaging(outDir);
  try {
    const result = await writeBundle(options, staging, key, uids, fetchFn, now);
    // The bundle appears at --out only complete and signed: rename(2) is atomic, and replaces the
    // directory when it exists empty.
    await fs.rename(staging, outDir);
    return { ...result, outDir };
  } catch (error) {
    await fs.rm(staging, { recursive: true, force: true });
    throw error;
  }
}

const STAGING_PREFIX = (outDir: string) => `.${path.basename(outDir)}.exporting-`;

/**
 * A bundle is written into a hidden staging directory beside --out, named with this process's pid. A failed
 * export removes it; one killed outright (kill -9, power loss) leaves it, and the next export to the same
 * --out removes the staging directories whose process is gone. So --out never holds a partial bundle.
 */
async function createStaging(outDir: string): Promise<string> {
  const parent = path.dirname(outDir);
  await fs.mkdir(parent, { recursive: true });
  const prefix = STAGING_PREFIX(outDir);
  for (const name of await fs.readdir(parent)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length));
    if (Number.isInteger(pid) && pid !== process.pid && !processAlive(pid))
      await fs.rm(path.join(parent, name), { recursive: true, force: true });
  }
  const staging = path.join(parent, `${prefix}${process.pid}`);
  await fs.mkdir(staging);
  return staging;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function writeBundle(
  options: ExportOptions,
  outDir: string,
  key: string,
  uids: string[],
  fetchFn: typeof fetch,
  now: () => Date
): Promise<ExportResult> {
  const { from, to } = options;

  const stepSeconds = chooseStep(from, to, options.maxPoints ?? 1000);
  const emptyTargets: string[] = [];
  const dashboards = await Promise.all(uids.map((uid) => loadDashboard(options.dashboardsDir, uid)));

  // Records first: a missing table fails before any file is written.
  const records: Record<string, Record<string, unknown>[]> = {};
  for (const source of RECORD_SOURCES) records[source.file] = await exportRecords(options.pool, source, from, to);
  const incidents = await incidentsForPeriod(options.pool, from, to);

  const queryLog: Record<string, QueryLogEntry[]> = {};
  const snapshots: Array<{ uid: string; body: Record<string, unknown> }> = [];
  for (const { file, dashboard } of dashboards) {
    const { body, queries } = await buildSnapshot({
      dashboard,
      prometheusUrl: options.prometheusUrl,
      from,
      to,
      stepSeconds,
      fetch: fetchFn,
    });
    snapshots.push({ uid: dashboard.uid, body });
    queryLog[dashboard.uid] = queries;
    for (const q of queries) if (q.series === 0) emptyTargets.push(`${file} #${q.panel} ${q.refId}`);
  }

  for (const { uid, body } of snapshots)
    await writeFile(outDir, `snapshots/${uid}.json`, JSON.stringify(body, null, 2) + '\n');
  await writeFile(
    outDir,
    'snapshots/queries.json',
    JSON.stringify({ prometheus: options.prometheusUrl, step_seconds: stepSeconds, dashboards: queryLog }, null, 2) +
      '\n'
  );
  for (const source of RECORD_SOURCES) await writeFile(outDir, source.file, jsonl(records[source.file]!));
  await writeFile(outDir, INCIDENTS_FILE, jsonl(incidents as unknown as Record<string, unknown>[]));

  const matrix = buildMatrix({ dashboards: uids, records, incidents, from, to });
  await writeFile(
    outDir,
    'evidence-matrix.json',
    JSON.stringify(
      { period: { from: from.toISOString(), to: to.toISOString() }, dashboards: uids, criteria: matrix },
      null,
      2
    ) + '\n'
  );
  await writeFile(outDir, 'evidence-matrix.md', matrixMarkdown(matrix, from, to, uids));

  const files = await listFiles(outDir);
  const manifest: Manifest = {
    format: 'controlroom-evidence/1',
    tool: await toolVersion(),
    generated_at: now().toISOString(),
    period: { from: from.toISOString(), to: to.toISOString(), end: 'exclusive' },
    dashboards: uids,
    signature: { algorithm: SIGNATURE_ALGORITHM, file: SIGNATURE_FILE },
    files: await Promise.all(
      files.map(async (rel) => {
        const bytes = await fs.readFile(path.join(outDir, rel));
        return { path: rel, size: bytes.length, sha256: sha256(bytes) };
      })
    ),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
  await fs.writeFile(path.join(outDir, MANIFEST_FILE), manifestBytes, { flag: 'wx' });
  await fs.writeFile(path.join(outDir, SIGNATURE_FILE), sign(manifestBytes, key) + '\n', { flag: 'wx' });

  return {
    outDir,
    files: [...files, MANIFEST_FILE, SIGNATURE_FILE].sort(),
    stepSeconds,
    records: {
      ...Object.fromEntries(RECORD_SOURCES.map((s) => [s.table, records[s.file]!.length])),
      'controlroom.incidents': incidents.length,
    },
    emptyTargets,
  };
}
