import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import { freePort } from '../../testing/postgres.ts';
import { startProcess, type RunningProcess } from '../../testing/processes.ts';
import { ALERTMANAGER_BIN } from '../../testing/prometheus-stack.ts';
import { parseMetrics, seriesKey } from '../../testing/prom-text.ts';
import { AM_TOKEN, startReceiverHarness, waitUntil, type ReceiverHarness } from '../../testing/receiver-harness.ts';

/**
 * A real Alertmanager (the Debian binary) delivers to the receiver with its own webhook client: bearer
 * credentials from http_config, payload v4, its group keys and fingerprints, send_resolved.
 */
const P1_CHANNEL = '#controlroom-pages';

interface Alertmanager {
  url: string;
  /** POST /api/v2/alerts */
  push(alerts: unknown[]): Promise<void>;
  alerts(): Promise<Array<{ fingerprint: string; labels: Record<string, string>; status: { state: string } }>>;
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

async function startAlertmanager(webhookUrl: string, token: string): Promise<Alertmanager> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'controlroom-am-'));
  const port = await freePort();
  const config = path.join(dir, 'alertmanager.yml');
  await fs.writeFile(
    config,
    YAML.stringify({
      route: {
        receiver: 'controlroom',
        group_by: ['alertname', 'slo'],
        group_wait: '1s',
        group_interval: '1s',
        repeat_interval: '1h',
      },
      receivers: [
        {
          name: 'controlroom',
          webhook_configs: [
            {
              url: webhookUrl,
              send_resolved: true,
              http_config: { authorization: { type: 'Bearer', credentials: token } },
            },
          ],
        },
      ],
    })
  );
  const url = `http://127.0.0.1:${port}`;
  let proc: RunningProcess;
  try {
    proc = await startProcess(
      ALERTMANAGER_BIN,
      [
        `--config.file=${config}`,
        `--storage.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--cluster.listen-address=',
      ],
      `${url}/-/ready`
    );
  } catch (error) {
    await fs.rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    async push(alerts) {
      const res = await fetch(`${url}/api/v2/alerts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(alerts),
      });
      assert.equal(res.status, 200, `Alertmanager refused the alerts: ${await res.text()}`);
    },
    async alerts() {
      return (await (await fetch(`${url}/api/v2/alerts`)).json()) as Awaited<ReturnType<Alertmanager['alerts']>>;
    },
    async metrics() {
      return (await fetch(`${url}/metrics`)).text();
    },
    async stop() {
      await proc.stop();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

let h: ReceiverHarness;
before(async () => {
  h = await startReceiverHarness();
});
after(async () => h?.stop());

const rejected = async () => {
  const metrics = parseMetrics(await (await fetch(`${h.base}/metrics`)).text());
  return (
    metrics.get(seriesKey('controlroom_alert_notifications_total', { outcome: 'rejected', source: 'alertmanager' })) ??
    0
  );
};

describe('Alertmanager with the right token', () => {
  let am: Alertmanager;
  before(async () => {
    am = await startAlertmanager(`${h.base}/webhooks/alertmanager`, AM_TOKEN);
  });
  after(async () => am?.stop());

  const labels = { alertname: 'CheckoutAvailabilityBurn', severity: 'P1', slo: 'availability', service: 'checkout' };
  const startsAt = new Date(Date.now() - 60_000).toISOString();
  const alert = (endsAt: Date) => ({
    labels,
    annotations: { summary: 'checkout availability: error budget burning 16x' },
    startsAt,
    endsAt: endsAt.toISOString(),
    generatorURL: 'http://prometheus.local/graph?g0.expr=slo%3Aburn_rate%3A5m',
  });

  test(
    'a firing alert is stored and paged in the P1 channel with Acknowledge and Resolve',
    { timeout: 60_000 },
    async () => {
      const rejectedBefore = await rejected();
      await am.push([alert(new Date(Date.now() + 3_600_000))]);
      const [inAm] = await waitUntil(
        async () => {
          const alerts = await am.alerts();
          return alerts.length > 0 && alerts;
        },
        10_000,
        'Alertmanager to hold the alert'
      );

      const groupKey = '{}:{alertname="CheckoutAvailabilityBurn", slo="availability"}';
      const stored = await waitUntil(
        async () =>
          (await h.db.pool.query(`SELECT * FROM controlroom.alert_notifications WHERE source = 'alertmanager'`))
            .rows[0],
        20_000,
        'the notification to be stored'
      );
      assert.equal(stored.group_key, groupKey, 'Alertmanager group key of group_by [alertname, slo]');
      assert.equal(stored.status, 'firing');
      assert.equal(stored.receiver, 'controlroom');
      assert.equal(stored.payload.version, '4');
      assert.deepEqual(stored.payload.groupLabels, { alertname: 'CheckoutAvailabilityBurn', slo: 'availability' });

      const { rows: events } = await h.db.pool.query(`SELECT * FROM controlroom.alert_events WHERE group_key = $1`, [
        groupKey,
      ]);
      assert.equal(events.length, 1);
      assert.equal(events[0].fingerprint, inAm!.fingerprint, "Alertmanager's own fingerprint");
      assert.equal(events[0].status, 'firing');
      assert.equal(events[0].alertname, 'CheckoutAvailabilityBurn');
      assert.equal(events[0].severity, 'P1');
      assert.equal(events[0].labels.slo, 'availability');
      assert.equal(new Date(events[0].starts_at).toISOString(), startsAt);

      const root = await h.slack.waitFor((c) => c.method === 'chat.postMessage' && !c.args.thread_ts, 20_000);
      assert.equal(root.args.channel, P1_CHANNEL);
      assert.equal(root.args.text, ':rotating_light: FIRING:1 [P1] CheckoutAvailabilityBurn (availability)');
      const blocks = root.args.blocks as Array<{
        type: string;
        elements?: Array<{ action_id?: string; text?: { text: string } }>;
      }>;
      const buttons = blocks.find((b) => b.type === 'actions')?.elements ?? [];
      assert.deepEqual(
        buttons.map((b) => [b.action_id, b.text?.text]),
        [
          ['page_ack', 'Acknowledge'],
          ['page_resolve', 'Resolve'],
        ]
      );
      assert.match(JSON.stringify(blocks), /checkout availability: error budget burning 16x/);
      assert.equal(await rejected(), rejectedBefore, 'nothing rejected');
    }
  );

  test(
    'resolving it in Alertmanager posts a thread reply and updates the root to RESOLVED',
    { timeout: 60_000 },
    async () => {
      // The root's ts is stored once Slack answered, a moment after the fake saw the call.
      const page = await waitUntil(
        async () => (await h.db.pool.query(`SELECT * FROM controlroom.slack_pages WHERE ts IS NOT NULL`)).rows[0],
        10_000,
        'the page of the first test'
      );
      await am.push([alert(new Date(Date.now() - 1_000))]);

      const reply = await h.slack.waitFor(
        (c) => c.method === 'chat.postMessage' && c.args.thread_ts === page.ts,
        20_000
      );
      assert.match(
        String(reply.args.text),
        /^\*Resolved \(1\)\*\n:large_green_circle: checkout availability: error budget burning 16x$/
      );
      const update = await h.slack.waitFor(
        (c) => c.method === 'chat.update' && c.args.ts === page.ts && /RESOLVED/.test(String(c.args.text)),
        20_000
      );
      assert.equal(update.args.text, ':white_check_mark: RESOLVED [P1] CheckoutAvailabilityBurn (availability)');
      const blocks = update.args.blocks as Array<{ type: string }>;
      assert.ok(!blocks.some((b) => b.type === 'actions'), 'no buttons on a resolved page');
      assert.ok(reply.at <= update.at, 'the reply comes first');

      const { rows: notifications } = await h.db.pool.query(
        `SELECT status FROM controlroom.alert_notifications ORDER BY id`
      );
      assert.equal(notifications.at(-1)?.status, 'resolved');
      const { rows: events } = await h.db.pool.query(
        `SELECT status, processed_at FROM controlroom.alert_events ORDER BY id`
      );
      assert.deepEqual(
        events.map((e) => e.status),
        ['firing', 'resolved']
      );
      await waitUntil(
        async () =>
          (await h.db.pool.query(`SELECT state FROM controlroom.slack_pages WHERE id = $1`, [page.id])).rows[0]
            ?.state === 'resolved',
        10_000,
        'page resolved'
      );
      // The P1 page also froze releases, and the freeze is announced in its own channel: count the page's roots only.
      const roots = h.slack.ok('chat.postMessage').filter((c) => !c.args.thread_ts && c.args.channel === P1_CHANNEL);
      assert.equal(roots.length, 1, 'still one root');
    }
  );
});

describe('Alertmanager with a wrong token', () => {
  let am: Alertmanager;
  before(async () => {
    am = await startAlertmanager(`${h.base}/webhooks/alertmanager`, 'not-the-alertmanager-token-0000');
  });
  after(async () => am?.stop());

  test(
    'its notifications are refused with 401, counted as rejected, and nothing is stored',
    { timeout: 60_000 },
    async () => {
      const rejectedBefore = await rejected();
      const {
        rows: [before],
      } = await h.db.pool.query(`SELECT count(*)::int AS n FROM controlroom.alert_notifications`);
      await am.push([
        {
          labels: { alertname: 'WrongTokenProbe', severity: 'P2', slo: 'latency' },
          annotations: { summary: 'should never reach Slack' },
          startsAt: new Date().toISOString(),
          endsAt: new Date(Date.now() + 3_600_000).toISOString(),
        },
      ]);
      await waitUntil(async () => (await rejected()) > rejectedBefore, 20_000, 'a rejected notification');
      // Alertmanager saw the failure too (a 4xx is not retried within a flush; the next flush tries again).
      await waitUntil(
        async () => {
          const failed = /^alertmanager_notifications_failed_total\{integration="webhook"\} (\d+)/m.exec(
            await am.metrics()
          );
          return Number(failed?.[1] ?? 0) > 0;
        },
        10_000,
        "Alertmanager's failed-notification counter"
      );
      await new Promise((r) => setTimeout(r, 2_000)); // a couple more group_interval flushes
      const {
        rows: [afterward],
      } = await h.db.pool.query(`SELECT count(*)::int AS n FROM controlroom.alert_notifications`);
      assert.equal(afterward.n, before.n, 'nothing stored');
      const { rows: events } = await h.db.pool.query(
        `SELECT 1 FROM controlroom.alert_events WHERE alertname = 'WrongTokenProbe'`
      );
      assert.equal(events.length, 0);
      assert.ok(!h.slack.calls.some((c) => /WrongTokenProbe/.test(String(c.args.text))), 'nothing reached Slack');
      assert.ok((await rejected()) >= rejectedBefore + 1);
    }
  );
});
