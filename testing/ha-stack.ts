import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { startStackChild, type StackChild } from '../cli/stack/child.ts';
import {
  ALERTMANAGER_HA_CONFIG,
  alertmanagerConfig,
  HA_COMPOSE,
  haPrometheusTargets,
  haproxyConfig,
  haWebhookUrl,
  PROMETHEUS_HA_CONFIG,
  prometheusConfig,
  rewriteTarget,
} from '../cli/stack/config.ts';
import { ruleFiles } from '../alerting/rule-files.ts';
import { FakeRegion } from './failover.ts';
import { FakeSlack } from './fake-slack.ts';
import { createTestDatabase, freePort, type TestDatabase } from './postgres.ts';
import { spawnControlroom, type ControlroomChild } from './processes.ts';
import { ALERTMANAGER_BIN, PROMETHEUS_BIN } from './prometheus-stack.ts';
import { AM_TOKEN, waitUntil } from './receiver-harness.ts';

/**
 * The production HA topology (README "Production (HA)") on one machine, every part real and on loopback:
 *
 *   2 Prometheus replicas (external label replica=a|b) ──scrape──► both Control Room instances
 *            │ alerts to both                                           ▲
 *            ▼                                                          │
 *   2 Alertmanagers, clustered (gossip on loopback) ──► HAProxy ────────┘ (one stable URL, health-checked)
 *
 * It runs the HA shape's own files (docker-compose.ha.yml): provisioning/prometheus/prometheus-ha.yml for
 * both replicas (the `replica` label from PROMETHEUS_REPLICA, as there), provisioning/alertmanager/
 * alertmanager-ha.yml for both Alertmanagers, and provisioning/haproxy/haproxy.cfg, with only the compose
 * hosts rewritten to loopback ports (a host the files name and this stack does not run fails the start),
 * the rule file paths, and the test stacks' intervals.
 *
 * Both Control Rooms (`bin/controlroom.mjs serve`, child processes that a test can kill -9) share one
 * Postgres; Slack is the local fake, the failover regions are two local fake regions. Intervals are the test
 * stacks' (1 s scrape, evaluation and grouping; 1 s resend), the failover lease is production's 15 s,
 * and Alertmanager's peer timeout is 2 s, so every takeover happens within seconds.
 */
export const HA_API_SECRET = 'controlroom-ha-api-secret-0123456789';
export const HA_API_HEADERS = {
  'x-controlroom-secret': HA_API_SECRET,
  'x-grafana-context': JSON.stringify({ Login: 'ops', OrgRole: 'Editor' }),
};
/**
 * The production default (FAILOVER_LEASE_SECONDS): a kill -9'd holder is taken over by the liveness sweep's
 * handover (control/failover/lease.ts) well before its lease would run out, and the test checks it is.
 */
/** Lanes per stored chunk, and so per rated batch, on the HA instances: small, so a 30,000-lane job has 300 chunks. */
export const HA_BULK_RATE_BATCH = 100;
export const HA_LEASE_SECONDS = 15;
export const HA_PEER_TIMEOUT_SECONDS = 2;

export const HAPROXY_BIN = process.env.HAPROXY_BIN ?? '/usr/sbin/haproxy';

/** A binary of the stack that a test can kill -9 and start again on the same data. */
export class StackProcess {
  #process: StackChild | null = null;
  constructor(
    readonly name: string,
    readonly url: string,
    private readonly command: string,
    private readonly args: string[],
    private readonly env?: Record<string, string>
  ) {}

  get running(): boolean {
    return this.#process !== null;
  }

  async start(): Promise<void> {
    this.#process = await startStackChild({
      name: this.name,
      command: this.command,
      args: this.args,
      readyUrl: `${this.url}/-/ready`,
      timeoutMs: 60_000,
      ...(this.env ? { env: this.env } : {}),
    });
  }

  /** kill -9, and wait until the process is gone. */
  async kill(): Promise<void> {
    const running = this.#process;
    if (!running) return;
    this.#process = null;
    process.kill(running.pid, 'SIGKILL');
    await running.stop();
  }

  async stop(): Promise<void> {
    const running = this.#process;
    this.#process = null;
    await running?.stop();
  }
}

export interface HaInstance {
  /** CONTROLROOM_INSTANCE_ID, also the failover lease holder and the queue workers' prefix. */
  id: string;
  port: number;
  url: string;
  child: ControlroomChild | null;
}

export interface HaStack {
  db: TestDatabase;
  slack: FakeSlack;
  /** HAProxy in front of both instances: the pair's one stable URL. */
  lb: StackProcess;
  instances: HaInstance[];
  alertmanagers: StackProcess[];
  prometheus: StackProcess[];
  /** Starts one Control Room instance (`serve`) and waits until it answers /healthz. */
  startInstance(instance: HaInstance): Promise<void>;
  /** kill -9 one instance and wait for its exit. */
  killInstance(instance: HaInstance): Promise<void>;
  /** Sends alerts to every running Alertmanager, as each Prometheus replica does (POST /api/v2/alerts). */
  sendAlerts(alerts: PostableAlert[]): Promise<void>;
  /** Instant or range query against one Prometheus replica. */
  query(
    replica: StackProcess,
    expr: string,
    range?: { start: number; end: number; step: number }
  ): Promise<PromSeries[]>;
  stop(): Promise<void>;
}

export interface PostableAlert {
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  startsAt: string;
  endsAt: string;
}

export interface PromSeries {
  metric: Record<string, string>;
  value?: [number, string];
  values?: Array<[number, string]>;
}

/**
 * Starts the topology. Instances are not started (a test decides the order with startInstance); the two
 * Alertmanagers and the two Prometheus replicas are, Alertmanagers first.
 */
export async function startHaStack(): Promise<HaStack> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'controlroom-ha-'));
  const db = await createTestDatabase();
  const slack = await FakeSlack.start();
  const regions = [await FakeRegion.start(), await FakeRegion.start()];
  const instances: HaInstance[] = [];
  for (const id of ['ha-a', 'ha-b']) {
    const port = await freePort();
    instances.push({ id, port, url: `http://127.0.0.1:${port}`, child: null });
  }
  const lbPort = await freePort();
  const lb = new StackProcess('controlroom-lb', `http://127.0.0.1:${lbPort}`, HAPROXY_BIN, [
    '-db',
    '-f',
    path.join(dir, 'haproxy.cfg'),
  ]);
  const alertmanagers: StackProcess[] = [];
  const prometheus: StackProcess[] = [];
  const stopAll = async () => {
    for (const instance of instances) await stopInstance(instance);
    for (const p of [...prometheus, ...alertmanagers, lb]) await p.stop();
    await slack.close();
    for (const region of regions) await region.close();
    await db.drop();
    await fs.rm(dir, { recursive: true, force: true });
  };

  const env = (instance: HaInstance) => ({
    PORT: String(instance.port),
    HOST: '127.0.0.1',
    DATABASE_URL: db.url,
    CONTROLROOM_INSTANCE_ID: instance.id,
    LOG_LEVEL: 'warn',
    LOG_FORMAT: 'json',
    ALERTMANAGER_WEBHOOK_TOKEN: AM_TOKEN,
    SLACK_BOT_TOKEN: 'xoxb-test-token',
    SLACK_API_URL: slack.apiUrl,
    SLACK_CHANNEL_INTERVAL_MS: '20',
    // Every group pages on its own (no digest), so "paged once" is one root message per group.
    ALERT_STORM_THRESHOLD: '1000',
    CONTROLROOM_AUTH: 'shared-secret',
    CONTROLROOM_API_SECRET: HA_API_SECRET,
    BULK_RATE_BATCH: String(HA_BULK_RATE_BATCH),
    JOB_CONCURRENCY: '2',
    EXPORTER_REFRESH_MS: '1000',
    // A batch cut off by kill -9 leaves a gap in the rated ids that never fills: the exporter waits this long
    // for a late commit before it moves past (production default 600 s).
    EXPORTER_GAP_GRACE_SECONDS: '5',
    FAILOVER_REGIONS: JSON.stringify([
      regions[0]!.spec('us-east-1', 'primary'),
      regions[1]!.spec('us-west-2', 'secondary'),
    ]),
    FAILOVER_LEASE_SECONDS: String(HA_LEASE_SECONDS),
    FAILOVER_CHECK_INTERVAL_SECONDS: '1',
  });

  const stopInstance = async (instance: HaInstance) => {
    const child = instance.child;
    instance.child = null;
    if (!child || child.child.exitCode !== null || child.child.signalCode !== null) return;
    child.child.kill('SIGTERM');
    const timer = setTimeout(() => child.child.kill('SIGKILL'), 10_000);
    await child.exited;
    clearTimeout(timer);
  };

  try {
    // Every compose host the HA files name, and where it runs here.
    const amPorts = await Promise.all([0, 1].map(async () => ({ web: await freePort(), gossip: await freePort() })));
    const hosts: Record<string, string> = {
      [HA_COMPOSE.balancer]: `127.0.0.1:${lbPort}`,
      ...Object.fromEntries(HA_COMPOSE.instances.map((target, i) => [target, `127.0.0.1:${instances[i]!.port}`])),
      ...Object.fromEntries(HA_COMPOSE.alertmanagers.map((target, i) => [target, `127.0.0.1:${amPorts[i]!.web}`])),
    };

    // The balancer: the HA shape's HAProxy configuration, health-checking both instances on /healthz.
    await fs.writeFile(path.join(dir, 'haproxy.cfg'), haproxyConfig({ hosts, bind: `127.0.0.1:${lbPort}` }));
    await lb.start();

    // Alertmanagers: the HA file, clustered over loopback gossip ports, each peering with the other, both
    // sending to the balancer with the bearer token from a file only this user reads.
    const tokenFile = path.join(dir, 'webhook-token');
    await fs.writeFile(tokenFile, AM_TOKEN, { mode: 0o600 });
    const amConfig = path.join(dir, 'alertmanager.yml');
    const webhook = haWebhookUrl();
    webhook.host = rewriteTarget(webhook.host, hosts, ALERTMANAGER_HA_CONFIG);
    await fs.writeFile(
      amConfig,
      alertmanagerConfig({ webhookUrl: webhook.toString(), tokenFile, groupSeconds: 1 }, ALERTMANAGER_HA_CONFIG)
    );
    amPorts.forEach((ports, i) => {
      const peer = amPorts[1 - i]!;
      alertmanagers.push(
        new StackProcess(`alertmanager-${i}`, `http://127.0.0.1:${ports.web}`, ALERTMANAGER_BIN, [
          `--config.file=${amConfig}`,
          `--storage.path=${path.join(dir, `am-${i}`)}`,
          `--web.listen-address=127.0.0.1:${ports.web}`,
          `--cluster.listen-address=127.0.0.1:${ports.gossip}`,
          `--cluster.advertise-address=127.0.0.1:${ports.gossip}`,
          `--cluster.peer=127.0.0.1:${peer.gossip}`,
          `--cluster.peer-timeout=${HA_PEER_TIMEOUT_SECONDS}s`,
          '--cluster.gossip-interval=100ms',
          '--cluster.pushpull-interval=2s',
          '--cluster.settle-timeout=5s',
        ])
      );
    });
    await Promise.all(alertmanagers.map((am) => am.start()));

    // Prometheus replicas: one configuration file (the HA file: both instances, both Alertmanagers), the
    // `replica` external label from PROMETHEUS_REPLICA, as in docker-compose.ha.yml.
    const targets = haPrometheusTargets();
    const config = prometheusConfig(
      {
        scrapeTargets: targets.instances.map((t) => rewriteTarget(t, hosts, PROMETHEUS_HA_CONFIG)),
        alertmanagerTarget: targets.alertmanagers.map((t) => rewriteTarget(t, hosts, PROMETHEUS_HA_CONFIG)),
        ruleFiles: ruleFiles(),
        intervalSeconds: 1,
      },
      PROMETHEUS_HA_CONFIG
    );
    const configFile = path.join(dir, 'prometheus.yml');
    await fs.writeFile(configFile, config);
    for (const replica of ['a', 'b']) {
      const port = await freePort();
      prometheus.push(
        new StackProcess(
          `prometheus-${replica}`,
          `http://127.0.0.1:${port}`,
          PROMETHEUS_BIN,
          [
            `--config.file=${configFile}`,
            `--storage.tsdb.path=${path.join(dir, `prom-${replica}`)}`,
            `--web.listen-address=127.0.0.1:${port}`,
            '--rules.alert.resend-delay=1s',
            '--enable-feature=expand-external-labels',
          ],
          { [HA_COMPOSE.replicaVariable]: replica }
        )
      );
    }
    await Promise.all(prometheus.map((p) => p.start()));
    // Each replica loaded the one file with its own label (expanded from PROMETHEUS_REPLICA, as under compose).
    for (const [i, replica] of prometheus.entries()) {
      const body = (await (await fetch(`${replica.url}/api/v1/status/config`)).json()) as { data: { yaml: string } };
      const labels = (YAML.parse(body.data.yaml) as { global: { external_labels?: Record<string, string> } }).global
        .external_labels;
      if (labels?.replica !== ['a', 'b'][i])
        throw new Error(
          `${replica.name} runs with external labels ${JSON.stringify(labels)}, not replica ${['a', 'b'][i]}`
        );
    }
  } catch (error) {
    await stopAll();
    throw error;
  }

  return {
    db,
    slack,
    lb,
    instances,
    alertmanagers,
    prometheus,
    async startInstance(instance) {
      const child = spawnControlroom(['serve', '--no-migrate'], env(instance));
      instance.child = child;
      try {
        await waitUntil(
          async () => {
            if (child.child.exitCode !== null) throw new Error('it exited');
            return (await fetch(`${instance.url}/healthz`).catch(() => null))?.ok;
          },
          90_000,
          `${instance.id} to answer /healthz`
        );
      } catch (error) {
        throw new Error(`${instance.id}: ${(error as Error).message}; its output:\n${child.output().slice(-4000)}`);
      }
    },
    async killInstance(instance) {
      const child = instance.child;
      instance.child = null;
      await child?.kill();
    },
    async sendAlerts(alerts) {
      const running = alertmanagers.filter((am) => am.running);
      await Promise.all(
        running.map(async (am) => {
          const res = await fetch(`${am.url}/api/v2/alerts`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(
              alerts.map((a) => ({ annotations: {}, ...a, generatorURL: 'http://prometheus.ha/graph' }))
            ),
          });
          if (!res.ok) throw new Error(`${am.name} refused the alerts: ${res.status} ${await res.text()}`);
        })
      );
    },
    async query(replica, expr, range) {
      const params = new URLSearchParams({ query: expr });
      if (range) for (const [k, v] of Object.entries(range)) params.set(k, String(v));
      const res = await fetch(`${replica.url}/api/v1/${range ? 'query_range' : 'query'}?${params}`);
      const body = (await res.json()) as { status: string; data?: { result: PromSeries[] }; error?: string };
      if (body.status !== 'success') throw new Error(`${replica.name}: query ${expr} failed: ${body.error}`);
      return body.data!.result;
    },
    stop: stopAll,
  };
}
