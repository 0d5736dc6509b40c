import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { planValue } from '../core/plan-targets.ts';
import { startHttpRecorder, type HttpRecorder } from '../testing/http-recorder.ts';
import { startLiveStack, type LiveStack } from '../testing/live-stack.ts';

/**
 * The whole alert path with real parts: demo traffic in Postgres -> Control Room's exporter -> real
 * Prometheus evaluating the generated SLO rules -> real Alertmanager -> a webhook.
 */
let webhook: HttpRecorder;
let live: LiveStack;

before(async () => {
  webhook = await startHttpRecorder();
  // Demo traffic replayed inside the scheduled error burst (minutes 10-13 of the hour).
  const burstStart = new Date();
  burstStart.setUTCMinutes(10, 0, 0);
  live = await startLiveStack({
    tenants: 20,
    backfillDays: 3,
    requestsPerSecond: 60,
    slowRefreshMs: 5000,
    webhookUrl: `${webhook.url}/alerts`,
    clock: (i) => new Date(burstStart.getTime() + (i % 180) * 1000),
  });
});

after(async () => {
  await live?.stop();
  await webhook?.close();
});

test(
  'an availability page fires through Prometheus and Alertmanager to the webhook',
  { timeout: 120_000 },
  async () => {
    const call = await webhook.waitFor((c) => {
      const body = c.json as { status?: string; alerts?: Array<{ status: string; labels: Record<string, string> }> };
      return (body.alerts ?? []).some(
        (a) => a.status === 'firing' && a.labels.alertname === 'SLOBurnRate1h' && a.labels.slo === 'availability'
      );
    }, 100_000);
    const body = call.json as {
      version: string;
      alerts: Array<{ labels: Record<string, string>; annotations: Record<string, string> }>;
    };
    assert.equal(call.path, '/alerts');
    assert.equal(body.version, '4');
    const alert = body.alerts.find((a) => a.labels.alertname === 'SLOBurnRate1h')!;
    assert.equal(alert.labels.severity, 'P1');
    assert.equal(alert.labels.window, '1h/5m');
    assert.match(alert.annotations.summary ?? '', /^availability: error budget burning \d+(\.\d)?x/);

    const [burn] = await live.stack.query('slo:burn_rate:5m{slo="availability"}');
    assert.ok(Number(burn!.value[1]) > 14.4, `5m burn rate ${burn?.value[1]}`);
  }
);

test('every rule evaluates without error against the live exporter', async () => {
  const res = await fetch(`${live.stack.prometheusUrl}/api/v1/rules`);
  const body = (await res.json()) as {
    data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> };
  };
  const rules = body.data.groups.flatMap((g) => g.rules);
  assert.ok(rules.length > 100, `only ${rules.length} rules loaded`);
  const broken = rules.filter((r) => r.health === 'err').map((r) => `${r.name}: ${r.lastError}`);
  assert.deepEqual(broken, []);
  const [remaining] = await live.stack.query('slo:error_budget_remaining:ratio{slo="quote_latency"}');
  assert.ok(remaining, 'quote latency budget is recorded from live data');
});

test('the live rules carry the plan targets; the fail-closed gate stays silent against a healthy exporter', async () => {
  const objectives = new Map(
    (await live.stack.query('slo:objective:ratio')).map((s) => [s.metric.slo, Number(s.value[1])])
  );
  assert.equal(objectives.get('availability'), planValue('availability_objective'));
  assert.equal(objectives.get('agent_success'), planValue('agent_success_objective'));
  assert.equal(objectives.get('quote_latency_failover'), planValue('quote_p95_quantile'));
  // The burst burns the halved 99.95% budget: the burn is the 5xx ratio over 0.0005.
  const [ratio] = await live.stack.query('slo:sli_error:ratio_rate5m{slo="availability"}');
  const [burn] = await live.stack.query('slo:burn_rate:5m{slo="availability"}');
  assert.ok(
    Math.abs(Number(burn!.value[1]) - Number(ratio!.value[1]) / (1 - planValue('availability_objective'))) <
      1e-6 * Number(burn!.value[1]) + 1e-9
  );
  // The exporter is scraped and its agent_tasks collector fresh: the gate can be read, so "unreadable" has no result.
  const unreadable = await live.stack.query(
    'vector(1) unless on () (time() - max(controlroom_exporter_last_success_timestamp_seconds{collector="agent_tasks"}) <= 300)'
  );
  assert.deepEqual(unreadable, []);
  const gateAlerts = await live.stack.query('ALERTS{alertname="ReleaseGateAgentSuccessUnreadable"}');
  assert.deepEqual(gateAlerts, []);
  // No cutover is running: the gauge says 0 and the failover-window SLO has no data.
  const [cutover] = await live.stack.query('tms_region_cutover_in_progress');
  assert.equal(cutover?.value[1], '0');
  assert.deepEqual(await live.stack.query('slo:sli_error:ratio_rate1h{slo="quote_latency_failover"}'), []);
});
