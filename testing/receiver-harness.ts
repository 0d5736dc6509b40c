import { createHmac } from 'node:crypto';
import { startServices, type RunningServices } from '../cli/services.ts';
import { loadConfig } from '../cli/config.ts';
import { createLogger } from '../core/logger.ts';
import { FakeSlack } from './fake-slack.ts';
import { createTestDatabase, type TestDatabase } from './postgres.ts';

export const AM_TOKEN = 'alertmanager-test-token-0123456789';
export const GRAFANA_TOKEN = 'grafana-test-token-0123456789';
export const GRAFANA_HMAC = 'grafana-hmac-secret-0123456789';
export const SLACK_SIGNING_SECRET = 'slack-signing-secret-0123456789';

export interface ReceiverHarness {
  db: TestDatabase;
  slack: FakeSlack;
  services: RunningServices;
  base: string;
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  /** Stops the service (as a crash would, between deliveries) and starts a fresh one on the same database. */
  restart(overrides?: Record<string, string>): Promise<void>;
  stop(): Promise<void>;
}

/** The full service on a throwaway database, its Slack pointed at a local fake. */
export async function startReceiverHarness(overrides: Record<string, string> = {}): Promise<ReceiverHarness> {
  const db = await createTestDatabase();
  const slack = await FakeSlack.start();
  const configFor = (extra: Record<string, string>) =>
    loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      EXPORTER_REFRESH_MS: '60000',
      ALERTMANAGER_WEBHOOK_TOKEN: AM_TOKEN,
      GRAFANA_WEBHOOK_TOKEN: GRAFANA_TOKEN,
      SLACK_BOT_TOKEN: 'xoxb-test-token',
      SLACK_API_URL: slack.apiUrl,
      SLACK_SIGNING_SECRET,
      SLACK_CHANNEL_INTERVAL_MS: '20',
      ...overrides,
      ...extra,
    });
  let services = await startServices(db.url, configFor({}), createLogger('silent'));
  const harness: ReceiverHarness = {
    db,
    slack,
    services,
    base: `http://127.0.0.1:${services.port}`,
    async post(path, body, headers = {}) {
      const res = await fetch(`${harness.base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${AM_TOKEN}`, ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    },
    async restart(extra = {}) {
      await services.stop();
      services = await startServices(db.url, configFor(extra), createLogger('silent'));
      harness.services = services;
      harness.base = `http://127.0.0.1:${services.port}`;
    },
    async stop() {
      await services.stop();
      await slack.close();
      await db.drop();
    },
  };
  return harness;
}

export interface TestAlert {
  alertname: string;
  status?: 'firing' | 'resolved';
  severity?: string;
  labels?: Record<string, string>;
  summary?: string;
  startsAt?: string;
  fingerprint?: string;
}

/** An Alertmanager v4 webhook body. */
export function amPayload(groupKey: string, alerts: TestAlert[], extra: Record<string, unknown> = {}) {
  const built = alerts.map((a) => {
    const labels = { alertname: a.alertname, ...(a.severity ? { severity: a.severity } : {}), ...a.labels };
    return {
      status: a.status ?? 'firing',
      labels,
      annotations: { summary: a.summary ?? `${a.alertname} is happening` },
      startsAt: a.startsAt ?? '2026-11-23T03:00:00Z',
      endsAt: a.status === 'resolved' ? '2026-11-23T04:00:00Z' : '0001-01-01T00:00:00Z',
      generatorURL: 'http://prometheus.local/graph',
      fingerprint:
        a.fingerprint ?? createHmac('sha256', 'fp').update(JSON.stringify(labels)).digest('hex').slice(0, 16),
    };
  });
  return {
    version: '4',
    groupKey,
    truncatedAlerts: 0,
    status: built.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    receiver: 'controlroom',
    groupLabels: { alertname: alerts[0]?.alertname ?? '' },
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://alertmanager.local',
    alerts: built,
    ...extra,
  };
}

export async function waitUntil<T>(
  probe: () => Promise<T | null | undefined | false>,
  timeoutMs = 20_000,
  what = 'condition'
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Presses a page button as Slack would: a signed block_actions interaction from user @oncall.ana. */
export function pressButton(
  base: string,
  pageId: string,
  action: string,
  options: { secret?: string; ts?: number } = {}
): Promise<Response> {
  const payload = JSON.stringify({
    type: 'block_actions',
    user: { id: 'U123', username: 'oncall.ana' },
    actions: [{ action_id: action, value: pageId }],
  });
  const body = `payload=${encodeURIComponent(payload)}`;
  const ts = String(options.ts ?? Math.floor(Date.now() / 1000));
  const signature = `v0=${createHmac('sha256', options.secret ?? SLACK_SIGNING_SECRET)
    .update(`v0:${ts}:${body}`)
    .digest('hex')}`;
  return fetch(`${base}/webhooks/slack/interactions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': ts,
      'x-slack-signature': signature,
    },
    body,
  });
}
