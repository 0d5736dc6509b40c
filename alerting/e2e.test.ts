import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startServices, type RunningServices } from '../cli/services.ts';
import { loadConfig, projectRoot } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { createDemoState, runDemoTick, seedDemo } from '../db/demo/index.ts';
import { startHttpRecorder, type HttpRecorder } from '../testing/http-recorder.ts';
import { createTestDatabase, type TestDatabase } from '../testing/postgres.ts';
import { startPrometheusStack, type PrometheusStack } from '../testing/prometheus-stack.ts';

/**
 * The whole alert path with real parts: demo traffic in Postgres -> Control Room's exporter -> real
 * Prometheus evaluating the generated SLO rules -> real Alertmanager -> a webhook.
 */
let db: TestDatabase;
let services: RunningServices;
let webhook: HttpRecorder;
let stack: PrometheusStack;
let traffic: Promise<void> | undefined;
let trafficRunning = true;

before(async () => {
  db = await createTestDatabase();
  await seedDemo(db.pool, { tenants: 20, backfillDays: 3 });
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', EXPORTER_REFRESH_MS: '1000', EXPORTER_SLOW_REFRESH_MS: '5000' });
  services = await startServices(db.url, config, createLogger('silent'));
  webhook = await startHttpRecorder();
  stack = await startPrometheusStack({
    scrapeTargets: [`127.0.0.1:${services.port}`],
    ruleFiles: [
      path.join(projectRoot, 'alerting', 'generated', 'slo-rules.yml'),
      path.join(projectRoot, 'alerting', 'rules', 'operational.rules.yml'),
    ],
    webhookUrl: `${webhook.url}/alerts`,
  });

  // Live demo traffic replayed inside the scheduled error burst (minutes 10-13 of the hour), one tick a second.
  const state = createDemoState({ tenants: 20, requestsPerSecond: 60 });
  const burstStart = new Date();
  burstStart.setUTCMinutes(10, 0, 0);
  traffic = (async () => {
    for (let i = 0; trafficRunning; i++) {
      await runDemoTick(db.pool, state, new Date(burstStart.getTime() + (i % 180) * 1000));
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
});

after(async () => {
  trafficRunning = false;
  await traffic;
  await stack?.stop();
  await webhook?.close();
  await services?.stop();
  await db?.drop();
});

test('an availability page fires through Prometheus and Alertmanager to the webhook', { timeout: 120_000 }, async () => {
  const call = await webhook.waitFor((c) => {
    const body = c.json as { status?: string; alerts?: Array<{ status: string; labels: Record<string, string> }> };
    return (body.alerts ?? []).some(
      (a) => a.status === 'firing' && a.labels.alertname === 'SLOBurnRate1h' && a.labels.slo === 'availability',
    );
  }, 100_000);
  const body = call.json as { version: string; alerts: Array<{ labels: Record<string, string>; annotations: Record<string, string> }> };
  assert.equal(call.path, '/alerts');
  assert.equal(body.version, '4');
  const alert = body.alerts.find((a) => a.labels.alertname === 'SLOBurnRate1h')!;
  assert.equal(alert.labels.severity, 'P1');
  assert.equal(alert.labels.window, '1h/5m');
  assert.match(alert.annotations.summary ?? '', /^availability: error budget burning \d+(\.\d)?x/);

  const [burn] = await stack.query('slo:burn_rate:5m{slo="availability"}');
  assert.ok(Number(burn!.value[1]) > 14.4, `5m burn rate ${burn?.value[1]}`);
});

test('every rule evaluates without error against the live exporter', async () => {
  const res = await fetch(`${stack.prometheusUrl}/api/v1/rules`);
  const body = (await res.json()) as { data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> } };
  const rules = body.data.groups.flatMap((g) => g.rules);
  assert.ok(rules.length > 100, `only ${rules.length} rules loaded`);
  const broken = rules.filter((r) => r.health === 'err').map((r) => `${r.name}: ${r.lastError}`);
  assert.deepEqual(broken, []);
  const [remaining] = await stack.query('slo:error_budget_remaining:ratio{slo="quote_latency"}');
  assert.ok(remaining, 'quote latency budget is recorded from live data');
});
