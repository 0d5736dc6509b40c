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
    .map((file) => ({ file, dashboard: JSON.parse(fs.readFileSync(path.join(dashboardsDir, file), 'utf8')) as Dashboard }));
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
      (p.targets ?? []).map((t) => ({ where: `${file} #${p.id} "${p.title}" ${t.refId}`, expr: substituteVariables(t.expr ?? '') })),
    ),
  );
}

const readYaml = (rel: string) => YAML.parse(fs.readFileSync(path.join(provisioningDir, rel), 'utf8')) as Record<string, unknown>;

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
      assert.ok(['timeseries', 'stat', 'gauge', 'bargauge', 'table'].includes(p.type), `${file} #${p.id}: panel type ${p.type}`);
      assert.ok((p.targets ?? []).length > 0, `${file} #${p.id} "${p.title}" has targets`);
      assert.deepEqual(p.datasource, { type: 'prometheus', uid: PROMETHEUS_UID }, `${file} #${p.id} datasource`);
      const refIds = (p.targets ?? []).map((t) => t.refId);
      assert.equal(new Set(refIds).size, refIds.length, `${file} #${p.id}: refIds are unique`);
      for (const t of p.targets ?? []) {
        assert.deepEqual(t.datasource, { type: 'prometheus', uid: PROMETHEUS_UID }, `${file} #${p.id} ${t.refId} datasource`);
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
    apps: Array<{ type: string; disabled: boolean; jsonData: { apiUrl: string }; secureJsonData: { apiSecret: string } }>;
  };
  assert.equal(plugins.apiVersion, 1);
  const app = plugins.apps.find((a) => a.type === 'transbot-controlroom-app');
  assert.equal(app?.disabled, false);
  assert.equal(app?.jsonData.apiUrl, 'http://controlroom:8471');
  assert.equal(app?.secureJsonData.apiSecret, '$CONTROLROOM_API_SECRET');

  const contactPoints = readYaml('alerting/contact-points.yaml') as {
    apiVersion: number;
    contactPoints: Array<{ name: string; receivers: Array<{ uid: string; type: string; settings: Record<string, unknown> }> }>;
  };
  assert.equal(contactPoints.apiVersion, 1);
  const cp = contactPoints.contactPoints.find((c) => c.name === 'controlroom');
  const webhook = cp?.receivers.find((r) => r.type === 'webhook');
  assert.equal(webhook?.settings.url, 'http://controlroom:8471/webhooks/grafana');
  assert.equal(webhook?.settings.authorization_scheme, 'Bearer');
  assert.equal(webhook?.settings.authorization_credentials, '$GRAFANA_WEBHOOK_TOKEN');
  assert.equal((webhook?.settings.hmacConfig as { secret?: string } | undefined)?.secret, '$GRAFANA_WEBHOOK_HMAC_SECRET');

  const policies = readYaml('alerting/policies.yaml') as { apiVersion: number; policies: Array<{ receiver: string }> };
  assert.equal(policies.apiVersion, 1);
  const names = new Set(contactPoints.contactPoints.map((c) => c.name));
  for (const p of policies.policies) assert.ok(names.has(p.receiver), `policy routes to provisioned contact point ${p.receiver}`);
});

test('the executive SLO cards draw the plan targets (core/plan-targets.ts) as their thresholds', () => {
  const executive = loadDashboards().find((d) => d.file === 'executive.json')!.dashboard;
  const byExpr = (expr: string) => {
    const panel = allPanels(executive.panels).find((p) => (p.targets ?? []).some((t) => t.expr === expr));
    assert.ok(panel, `executive.json has a panel for ${expr}`);
    return Object.fromEntries((panel.fieldConfig?.defaults?.thresholds?.steps ?? []).map((s) => [s.color, s.value]));
  };
  // Availability over the 30-day budget period: green from the objective on.
  assert.equal(byExpr('1 - slo:sli_error:ratio_rate30d{slo="availability"}').green, planValue('availability_objective'));
  // Agent success per rolling hour: green from the objective, red below the release gate.
  const agent = byExpr('1 - slo:sli_error:ratio_rate1h{slo="agent_success"}');
  assert.deepEqual([agent.green, agent.orange, agent.red], [planValue('agent_success_objective'), planValue('release_gate_agent_success'), null]);
  // Uncached quote p95: red from the bound on.
  const p95 = byExpr('histogram_quantile(0.95, sum by (le) (rate(tms_quote_request_duration_seconds_bucket{cached="false"}[5m])))');
  assert.equal(p95.red, planValue('quote_p95_uncached_seconds'));
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
        return new Date(hour.getTime() + incident.fromMinute * 60_000 + Math.floor(i / INCIDENT_SCHEDULE.length) * 1000);
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
    assert.ok(Number(availability!.value[1]) < 1 && Number(availability!.value[1]) > 0.5, `availability ${availability?.value[1]}`);
    const near = await live.stack.query('tms_usage_ratio * on(company_id) group_left(name, plan) tms_company_info');
    assert.ok(near.every((s) => s.metric.name && s.metric.plan), 'usage rows carry the tenant name and plan');
  });
});
