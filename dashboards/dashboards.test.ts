import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import { projectRoot } from '../core/config.ts';
import { planValue } from '../core/plan-targets.ts';
import { INCIDENT_SCHEDULE } from '../db/demo/index.ts';
import { startLiveStack, type LiveStack } from '../testing/live-stack.ts';

/**
 * The provisioned dashboards and Grafana provisioning files: static checks of the JSON and YAML, then every
 * panel query run against a real Prometheus scraping the live service over demo traffic.
 */
const dashboardsDir = path.join(projectRoot, 'dashboards');
const provisioningDir = path.join(projectRoot, 'provisioning');
const PROMETHEUS_UID = 'controlroom-prometheus';

const EXPECTED_UIDS: Record<string, string> = {
  'executive.json': 'controlroom-executive',
  'slo.json': 'controlroom-slo',
  'usage.json': 'controlroom-usage',
  'regions.json': 'controlroom-regions',
  'self.json': 'controlroom-self',
  'incidents.json': 'controlroom-incidents',
  'pricing.json': 'controlroom-pricing',
};

interface Target {
  refId?: string;
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  fieldConfig?: { defaults?: { thresholds?: { steps: Array<{ color: string; value: number | null }> } } };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating?: { list: Array<{ name: string; type: string; datasource?: { uid?: string }; definition?: string }> };
}

function loadDashboards(): Array<{ file: string; dashboard: Dashboard }> {
  return fs
    .readdirSync(dashboardsDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({
      file,
      dashboard: JSON.parse(fs.readFileSync(path.join(dashboardsDir, file), 'utf8')) as Dashboard,
    }));
}

/** Panels including those nested in collapsed rows. */
const allPanels = (panels: Panel[]): Panel[] => panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);

/** Grafana's variables as the live test resolves them. */
function substituteVariables(expr: string): string {
  return expr
    .replace(/\$\{slo(?::[a-z]+)?\}|\$slo\b/g, 'availability')
    .replace(/\$\{?__rate_interval\}?/g, '1m')
    .replace(/\$\{?__range\}?/g, '5m')
    .replace(/\$\{?__interval\}?/g, '15s');
}

function panelQueries(): Array<{ where: string; expr: string }> {
  return loadDashboards().flatMap(({ file, dashboard }) =>
    allPanels(dashboard.panels).flatMap((p) =>
      (p.targets ?? []).map((t) => ({
        where: `${file} #${p.id} "${p.title}" ${t.refId}`,
        expr: substituteVariables(t.expr ?? ''),
      }))
    )
  );
}

const readYaml = (rel: string) =>
  YAML.parse(fs.readFileSync(path.join(provisioningDir, rel), 'utf8')) as Record<string, unknown>;

test('every dashboard parses, keeps its stable uid and uses the provisioned Prometheus datasource', () => {
  const dashboards = loadDashboards();
  assert.deepEqual(dashboards.map((d) => d.file).sort(), Object.keys(EXPECTED_UIDS).sort());
  const uids = new Set<string>();
  for (const { file, dashboard } of dashboards) {
    assert.equal(dashboard.uid, EXPECTED_UIDS[file], `${file} uid`);
    assert.ok(!uids.has(dashboard.uid), `${file}: duplicate uid`);
    uids.add(dashboard.uid);
    assert.equal(dashboard.schemaVersion, 39, `${file} schemaVersion`);
    assert.ok(dashboard.title, `${file} has a title`);
    const panels = allPanels(dashboard.panels);
    assert.ok(panels.length > 0, `${file} has panels`);
    const ids = panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, `${file}: panel ids are unique (${ids.join(',')})`);
    for (const p of panels) {
      if (p.type === 'row') continue;
      assert.ok(
        ['timeseries', 'stat', 'gauge', 'bargauge', 'table'].includes(p.type),
        `${file} #${p.id}: panel type ${p.type}`
      );
      assert.ok((p.targets ?? []).length > 0, `${file} #${p.id} "${p.title}" has targets`);
      assert.deepEqual(p.datasource, { type: 'prometheus', uid: PROMETHEUS_UID }, `${file} #${p.id} datasource`);
      const refIds = (p.targets ?? []).map((t) => t.refId);
      assert.equal(new Set(refIds).size, refIds.length, `${file} #${p.id}: refIds are unique`);
      for (const t of p.targets ?? []) {
        assert.deepEqual(
          t.datasource,
          { type: 'prometheus', uid: PROMETHEUS_UID },
          `${file} #${p.id} ${t.refId} datasource`
        );
        assert.ok(t.expr && t.expr.trim() !== '', `${file} #${p.id} ${t.refId} has an expr`);
        assert.doesNotMatch(substituteVariables(t.expr), /\$/, `${file} #${p.id} ${t.refId}: only known variables`);
      }
    }
    for (const v of dashboard.templating?.list ?? []) {
      if (v.type === 'query') assert.equal(v.datasource?.uid, PROMETHEUS_UID, `${file} variable ${v.name} datasource`);
    }
  }
  const slo = dashboards.find((d) => d.dashboard.uid === 'controlroom-slo')!.dashboard;
  const sloVar = slo.templating?.list.find((v) => v.name === 'slo');
  assert.equal(sloVar?.definition, 'label_values(slo:objective:ratio, slo)');
});

test('provisioning files parse and point at the dashboards, datasources, app and receiver', () => {
  const datasources = readYaml('datasources/controlroom.yaml') as {
    apiVersion: number;
    datasources: Array<{ uid: string; type: string; url: string }>;
  };
  assert.equal(datasources.apiVersion, 1);
  const prom = datasources.datasources.find((d) => d.uid === PROMETHEUS_UID);
  assert.equal(prom?.type, 'prometheus');
  assert.equal(prom?.url, 'http://prometheus:9090');
  const pg = datasources.datasources.find((d) => d.uid === 'controlroom-postgres');
  assert.match(pg?.type ?? '', /postgres/);
  // Every datasource uid a dashboard names is provisioned.
  const provisioned = new Set(datasources.datasources.map((d) => d.uid));
  for (const { file, dashboard } of loadDashboards()) {
    for (const p of allPanels(dashboard.panels)) {
      for (const uid of [p.datasource?.uid, ...(p.targets ?? []).map((t) => t.datasource?.uid)]) {
        if (uid) assert.ok(provisioned.has(uid), `${file} #${p.id} uses unprovisioned datasource ${uid}`);
      }
    }
  }

  const dashboards = readYaml('dashboards/controlroom.yaml') as {
    apiVersion: number;
    providers: Array<{ type: string; folder: string; options: { path: string } }>;
  };
  assert.equal(dashboards.apiVersion, 1);
  assert.equal(dashboards.providers.length, 1);
  const provider = dashboards.providers[0]!;
  assert.equal(provider.type, 'file');
  assert.equal(provider.folder, 'Control Room');
  assert.equal(provider.options.path, '/var/lib/grafana/dashboards/controlroom');

  const plugins = readYaml('plugins/controlroom-app.yaml') as {
    apiVersion: number;
    apps: Array<{
      type: string;
      disabled: boolean;
      jsonData: { apiUrl: string };
      secureJsonData: { apiSecret: string };
    }>;
  };
  assert.equal(plugins.apiVersion, 1);
  const app = plugins.apps.find((a) => a.type === 'transbot-controlroom-app');
  assert.equal(app?.disabled, false);
  // Where Control Room is comes from Grafana's environment (instance a, or the HA balancer); cli/compose.test.ts
  // checks what it resolves to in each compose shape.
  assert.equal(app?.jsonData.apiUrl, '$CONTROLROOM_URL');
  assert.equal(app?.secureJsonData.apiSecret, '$CONTROLROOM_API_SECRET');

  const contactPoints = readYaml('alerting/contact-points.yaml') as {
    apiVersion: number;
    contactPoints: Array<{
      name: string;
      receivers: Array<{ uid: string; type: string; settings: Record<string, unknown> }>;
    }>;
  };
  assert.equal(contactPoints.apiVersion, 1);
  const cp = contactPoints.contactPoints.find((c) => c.name === 'controlroom');
  const webhook = cp?.receivers.find((r) => r.type === 'webhook');
  assert.equal(webhook?.settings.url, '${CONTROLROOM_URL}/webhooks/grafana');
  assert.equal(webhook?.settings.authorization_scheme, 'Bearer');
  assert.equal(webhook?.settings.authorization_credentials, '$GRAFANA_WEBHOOK_TOKEN');
  assert.equal(
    (webhook?.settings.hmacConfig as { secret?: string } | undefined)?.secret,
    '$GRAFANA_WEBHOOK_HMAC_SECRET'
  );

  const policies = readYaml('alerting/policies.yaml') as { apiVersion: number; policies: Array<{ receiver: string }> };
  assert.equal(policies.apiVersion, 1);
  const names = new Set(contactPoints.contactPoints.map((c) => c.name));
  for (const p of policies.policies)
    assert.ok(names.has(p.receiver), `policy routes to provisioned contact point ${p.receiver}`);
});

test('the executive SLO cards draw the plan targets (core/plan-targets.ts) as their thresholds', () => {
  const executive = loadDashboards().find((d) => d.file === 'executive.json')!.dashboard;
  const byExpr = (expr: string) => {
    const panel = allPanels(executive.panels).find((p) => (p.targets ?? []).some((t) => t.expr === expr));
    assert.ok(panel, `executive.json has a panel for ${expr}`);
    return Object.fromEntries((panel.fieldConfig?.defaults?.thresholds?.steps ?? []).map((s) => [s.color, s.value]));
  };
  // Availability over the 30-day budget period: green from the objective on.
  assert.equal(
    byExpr('1 - slo:sli_error:ratio_rate30d{slo="availability"}').green,
    planValue('availability_objective')
  );
  // Agent success per rolling hour (the KPI rules' recording rule): green from the objective, red below the
  // release gate; the 30-day ratio on the same card.
  const agent = byExpr('slo:sli_success:ratio_rate1h{slo="agent_success"}');
  assert.deepEqual(
    byExpr('1 - slo:sli_error:ratio_rate30d{slo="agent_success"}'),
    agent,
    'the 30-day ratio is on the same card'
  );
  assert.deepEqual(
    [agent.green, agent.orange, agent.red],
    [planValue('agent_success_objective'), planValue('release_gate_agent_success'), null]
  );
  // Uncached quote p95: red from the bound on.
  const p95 = byExpr(
    'histogram_quantile(0.95, sum by (le) (max without (instance) (rate(tms_quote_request_duration_seconds_bucket{cached="false"}[5m]))))'
  );
  assert.equal(p95.red, planValue('quote_p95_uncached_seconds'));
});

/** The threshold steps of the one single-value panel (stat, gauge, bar gauge) of `file` with a query `expr`, as colour → value. */
function stepsOf(file: string, expr: string): Record<string, number | null> {
  const dashboard = loadDashboards().find((d) => d.file === file)!.dashboard;
  const panels = allPanels(dashboard.panels).filter(
    (p) => p.type !== 'timeseries' && (p.targets ?? []).some((t) => t.expr === expr)
  );
  assert.equal(panels.length, 1, `${file}: one single-value panel queries ${expr}`);
  return Object.fromEntries((panels[0]!.fieldConfig?.defaults?.thresholds?.steps ?? []).map((s) => [s.color, s.value]));
}

test("the executive scorecard has a panel per plan KPI with the plan's target as its threshold", () => {
  const file = 'executive.json';
  const floor = (expr: string, key: string) =>
    assert.deepEqual(stepsOf(file, expr), { red: null, green: planValue(key) }, expr);
  const ceiling = (expr: string, key: string) =>
    assert.deepEqual(stepsOf(file, expr), { green: null, red: planValue(key) }, expr);
  floor('max without (instance) (tms_conversion_ratio{funnel="trial_to_paid"})', 'trial_to_paid_min');
  floor('max without (instance) (tms_conversion_ratio{funnel="quote_to_book"})', 'quote_to_book_min');
  floor('max without (instance) (tms_conversion_ratio{funnel="invite_to_onboard"})', 'invite_to_onboard_min');
  floor('max without (instance) (tms_mrr_growth_ratio)', 'mrr_growth_mom_min');
  ceiling('max without (instance) (tms_logo_churn_ratio)', 'logo_churn_monthly_max');
  ceiling('max without (instance) (tms_quote_variance_ratio)', 'pricing_variance_max');
  assert.deepEqual(stepsOf(file, 'max without (instance) (tms_overage_revenue_share_ratio)'), {
    orange: null,
    green: planValue('overage_revenue_share_min'),
    red: planValue('overage_revenue_share_max'),
  });
  // Without a plan number: red/green at the break-even points (no uplift, no retained growth).
  assert.deepEqual(stepsOf(file, 'max without (instance) (tms_arpa_uplift_ratio)'), { red: null, green: 0 });
  assert.deepEqual(stepsOf(file, 'max without (instance) (tms_net_revenue_retention_ratio)'), { red: null, green: 1 });
  // The plan's numbers themselves, so a wrong entry in core/plan-targets.ts fails here too.
  assert.deepEqual(
    [
      'trial_to_paid_min',
      'quote_to_book_min',
      'invite_to_onboard_min',
      'mrr_growth_mom_min',
      'logo_churn_monthly_max',
      'overage_revenue_share_min',
      'overage_revenue_share_max',
      'pricing_variance_max',
    ].map(planValue),
    [0.25, 0.28, 0.25, 0.12, 0.05, 0.08, 0.12, 0.08]
  );

  // The three-funnel bar gauge colours each funnel at its own target, not one shared step.
  const executive = loadDashboards().find((d) => d.file === file)!.dashboard as unknown as {
    panels: Array<
      Panel & {
        fieldConfig: {
          overrides: Array<{
            matcher: { options: string };
            properties: Array<{ id: string; value: { steps: Array<{ color: string; value: number | null }> } }>;
          }>;
        };
      }
    >;
  };
  const conversions = executive.panels.find((p) => p.title === 'Conversions (30-day cohorts)')!;
  const funnelTargets = Object.fromEntries(
    conversions.fieldConfig.overrides.map((o) => [
      o.matcher.options,
      o.properties.find((p) => p.id === 'thresholds')!.value.steps.find((s) => s.color === 'green')!.value,
    ])
  );
  assert.deepEqual(funnelTargets, { trial_to_paid: 0.25, quote_to_book: 0.28, invite_to_onboard: 0.25 });

  // Region health and the usage meter summary are on the executive dashboard, which refreshes every 30 s.
  stepsOf(file, 'max without (instance) (tms_region_up)');
  stepsOf(file, 'sum(max without (instance) (tms_usage_companies{band="over"}))');
  assert.equal((executive as unknown as { refresh: string }).refresh, '30s');
});

test('the incident response dashboard draws each severity against its SLA budget', () => {
  const file = 'incidents.json';
  const day = 86_400;
  const budgets = {
    P1: planValue('incident_p1_seconds'),
    P2: planValue('incident_p2_business_days') * day,
    P3: planValue('incident_p3_business_days') * day,
  };
  assert.deepEqual(budgets, { P1: 4 * 3600, P2: day, P3: 3 * day });
  for (const [severity, budget] of Object.entries(budgets)) {
    for (const histogram of [
      'controlroom_incident_time_to_acknowledge_seconds',
      'controlroom_incident_time_to_resolve_seconds',
    ]) {
      const expr = `histogram_quantile(0.95, max by (le) (increase(${histogram}_bucket{severity="${severity}"}[$__range])))`;
      assert.deepEqual(stepsOf(file, expr), { green: null, red: budget }, expr);
    }
  }
  assert.equal(
    stepsOf(file, 'max by (severity, stage) (increase(controlroom_incident_sla_breaches_total[$__range]))').red,
    1
  );
  assert.equal(stepsOf(file, 'max by (severity) (controlroom_incidents_past_sla)').red, 1);
  stepsOf(file, 'max by (severity) (controlroom_incidents_open)');
});

test("every metric the session's producers add has a panel (names fixed for the parallel branches)", () => {
  const exprs = (file: string) =>
    allPanels(loadDashboards().find((d) => d.file === file)!.dashboard.panels)
      .flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''))
      .join('\n');
  const expectIn = (file: string, names: string[]) => {
    const text = exprs(file);
    assert.deepEqual(
      names.filter((n) => !text.includes(n)),
      [],
      `${file} lacks panels for these metrics`
    );
  };
  expectIn('executive.json', [
    'tms_mrr_growth_ratio',
    'tms_net_revenue_retention_ratio',
    'tms_logo_churn_ratio',
    'tms_arpa_baseline_dollars',
    'tms_arpa_uplift_ratio',
    'tms_overage_revenue_share_ratio',
    'slo:sli_success:ratio_rate1h{slo="agent_success"}',
  ]);
  expectIn('incidents.json', [
    'controlroom_incident_time_to_acknowledge_seconds_bucket',
    'controlroom_incident_time_to_resolve_seconds_bucket',
    'controlroom_incident_sla_breaches_total',
    'controlroom_incidents_open',
    'controlroom_incidents_past_sla',
  ]);
  expectIn('pricing.json', [
    'controlroom_pricing_lanes_rated_total',
    'controlroom_pricing_anomaly_lanes_total',
    'controlroom_pricing_needs_review_lanes_total',
    'controlroom_pricing_quoted_dollars_total',
    'controlroom_pricing_quoted_miles_total',
    'controlroom_pricing_candidate_share_ratio',
    'controlroom:pricing_anomaly_ratio:rate1h',
  ]);
});

describe('live: every panel query returns data from Prometheus over demo traffic', () => {
  let live: LiveStack;

  before(async () => {
    // No FAILOVER_REGIONS: the placeholder regions (failing checks, no replication lag URL). The demo clock
    // cycles through every scheduled incident (5xx burst, slow quotes, agent failures), so error, latency
    // and agent series all move.
    const hour = new Date();
    hour.setUTCMinutes(0, 0, 0);
    live = await startLiveStack({
      tenants: 20,
      backfillDays: 3,
      requestsPerSecond: 60,
      slowRefreshMs: 2000,
      clock: (i) => {
        const incident = INCIDENT_SCHEDULE[i % INCIDENT_SCHEDULE.length]!;
        return new Date(
          hour.getTime() + incident.fromMinute * 60_000 + Math.floor(i / INCIDENT_SCHEDULE.length) * 1000
        );
      },
    });
  });

  after(async () => {
    await live?.stop();
  });

  test('all panel targets of all dashboards have at least one series', { timeout: 120_000 }, async () => {
    const queries = panelQueries();
    assert.ok(queries.length > 40, `only ${queries.length} panel queries`);
    // ~25 s of scrapes and rule evaluations, then keep polling (up to 90 s in all) for the slowest series.
    await new Promise((r) => setTimeout(r, 25_000));
    const deadline = Date.now() + 65_000;
    let empty: string[] = [];
    for (;;) {
      empty = [];
      for (const q of queries) {
        const result = await live.stack.query(q.expr); // throws on a PromQL error
        if (result.length === 0) empty.push(`${q.where}: ${q.expr}`);
      }
      if (empty.length === 0 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 2000));
    }
    assert.deepEqual(empty, [], 'panel queries without data');

    // A few values that show the data is the demo's, not a fallback.
    const [availability] = await live.stack.query('1 - slo:sli_error:ratio_rate30d{slo="availability"}');
    assert.ok(
      Number(availability!.value[1]) < 1 && Number(availability!.value[1]) > 0.5,
      `availability ${availability?.value[1]}`
    );
    const near = await live.stack.query('tms_usage_ratio * on(company_id) group_left(name, plan) tms_company_info');
    assert.ok(
      near.every((s) => s.metric.name && s.metric.plan),
      'usage rows carry the tenant name and plan'
    );
  });
});
