import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { RULE_DIRS, ruleFiles } from '../../alerting/rule-files.ts';
import { projectRoot } from '../../core/config.ts';
import {
  ALERTMANAGER_HA_CONFIG,
  alertmanagerConfig,
  HA_COMPOSE,
  haAlertmanagerConfig,
  HAPROXY_CONFIG,
  haPrometheusConfig,
  PROMETHEUS_CONFIG_SOURCE,
  PROMETHEUS_HA_CONFIG,
  prometheusConfig,
} from './config.ts';
import { HA_FILES } from './ha-files.ts';
import { startStackChild, type StackChild } from './child.ts';
import { composeConfig as composeFiles } from '../../testing/compose.ts';
import { freePort } from '../../testing/postgres.ts';
import { ALERTMANAGER_BIN, PROMETHEUS_BIN } from '../../testing/prometheus-stack.ts';
import { waitUntil } from '../../testing/receiver-harness.ts';

/**
 * The HA shape on Docker (docker-compose.ha.yml over docker-compose.yml), checked offline: docker-compose v1
 * resolves the two files together; the second of each pair differs from the first only where it must (its
 * id, its replica label, its data volume, its published port); every service the derived Prometheus and
 * Alertmanager files and the HAProxy configuration name exists; the derived files are what their sources
 * give today; and promtool, amtool and `haproxy -c` accept what is mounted.
 */

const run = promisify(execFile);

interface Service {
  image?: string;
  build?: unknown;
  restart?: string;
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string>;
  healthcheck?: unknown;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition?: string }>;
  tmpfs?: string[];
  networks?: Record<string, { ipv4_address?: string } | null>;
}
type Compose = { services: Record<string, Service> };

const composeConfig = (files: string[]) => composeFiles<Compose>(files);

let ha: Compose;
let base: Compose;
let dir: string;
before(async () => {
  [ha, base] = await Promise.all([
    composeConfig(['docker-compose.yml', 'docker-compose.ha.yml']),
    composeConfig(['docker-compose.yml']),
  ]);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'controlroom-ha-compose-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const service = (config: Compose, name: string): Service => {
  const found = config.services[name];
  assert.ok(found, `service ${name} is defined`);
  return found;
};
const without = <T extends object>(value: T, ...keys: string[]) =>
  Object.fromEntries(Object.entries(value).filter(([k]) => !keys.includes(k)));
/** Where a container path is mounted from (host path or volume name). */
const mountOf = (s: Service, target: string) =>
  (s.volumes ?? []).map((v) => v.split(':')).find((parts) => parts[1] === target)?.[0];
const hostOf = (target: string) => target.split(':')[0]!;

describe('docker-compose.ha.yml over docker-compose.yml', () => {
  test('the default shape is unchanged without the HA file: one of each, no HA service', () => {
    for (const name of ['controlroom-b', 'controlroom-lb', 'prometheus-b', 'alertmanager-b'])
      assert.equal(base.services[name], undefined, `${name} runs only in the HA shape`);
    assert.equal(mountOf(service(base, 'prometheus'), '/etc/prometheus/prometheus.yml'), PROMETHEUS_CONFIG_SOURCE);
  });

  test('two Control Room instances: the same image, command, settings and health check, distinct ids', () => {
    const a = service(ha, 'controlroom');
    const b = service(ha, 'controlroom-b');
    assert.equal(b.image, a.image);
    assert.deepEqual(b.build, a.build);
    assert.deepEqual(b.command, a.command);
    assert.deepEqual(b.healthcheck, a.healthcheck);
    assert.equal(b.restart, a.restart);
    assert.deepEqual(b.volumes, a.volumes);
    assert.deepEqual(
      without(b.environment!, 'CONTROLROOM_INSTANCE_ID'),
      without(a.environment!, 'CONTROLROOM_INSTANCE_ID')
    );
    const ids = [a.environment!.CONTROLROOM_INSTANCE_ID, b.environment!.CONTROLROOM_INSTANCE_ID];
    assert.ok(ids.every(Boolean) && ids[0] !== ids[1], `distinct instance ids: ${ids.join(', ')}`);
    assert.equal(b.ports, undefined, 'the second instance is reached through the balancer only');
    assert.equal(b.depends_on?.controlroom?.condition, 'service_healthy', 'b starts once a has migrated');
    // The instances the derived Prometheus file scrapes are these two, on the port they serve.
    assert.deepEqual(
      HA_COMPOSE.instances,
      [`controlroom:${a.environment!.PORT}`, `controlroom-b:${b.environment!.PORT}`],
      'HA_COMPOSE.instances names the two instance services and their PORT'
    );
  });

  test('the balancer: HAProxy with the committed configuration, health-checking both instances on /healthz, on loopback', async () => {
    const lb = service(ha, 'controlroom-lb');
    assert.match(lb.image ?? '', /^haproxy:/);
    assert.equal(mountOf(lb, '/usr/local/etc/haproxy/haproxy.cfg'), HAPROXY_CONFIG);
    assert.deepEqual(lb.ports, ['127.0.0.1:8470:8471/tcp']);
    const cfg = fs.readFileSync(HAPROXY_CONFIG, 'utf8');
    const servers = [...cfg.matchAll(/^\s*server\s+\S+\s+(\S+)/gm)].map((m) => m[1]);
    assert.deepEqual(servers, [...HA_COMPOSE.instances]);
    assert.match(cfg, /^\s*option httpchk GET \/healthz$/m);
    assert.match(cfg, /^\s*bind :(\d+)$/m);
    assert.equal(/^\s*bind :(\d+)$/m.exec(cfg)![1], HA_COMPOSE.balancer.split(':')[1]);
    assert.equal(hostOf(HA_COMPOSE.balancer), 'controlroom-lb');
    // Grafana calls through it: its provisioning files read CONTROLROOM_URL, which points here, and the
    // instances believe the X-Forwarded-For entry it appends (Grafana's) at its fixed address.
    const grafana = service(ha, 'grafana');
    assert.equal(grafana.environment!.CONTROLROOM_URL, `http://${HA_COMPOSE.balancer}`);
    assert.equal(service(base, 'grafana').environment!.CONTROLROOM_URL, `http://${HA_COMPOSE.instances[0]}`);
    assert.equal(grafana.depends_on?.['controlroom-lb']?.condition, 'service_started');
    const lbAddress = Object.values(lb.networks ?? {})[0]?.ipv4_address;
    assert.ok(lbAddress, 'the balancer has a fixed address');
    const grafanaAddress = Object.values(grafana.networks ?? {})[0]?.ipv4_address;
    for (const name of ['controlroom', 'controlroom-b']) {
      const instance = service(ha, name).environment!;
      assert.equal(instance.CONTROLROOM_TRUSTED_BALANCER, lbAddress, `${name} trusts the balancer's hop`);
      assert.equal(instance.CONTROLROOM_TRUSTED_PROXY, grafanaAddress, `${name} trusts Grafana's hop`);
    }
    assert.equal(service(base, 'controlroom').environment!.CONTROLROOM_TRUSTED_BALANCER, undefined);
    assert.match(cfg, /^\s*option forwardfor$/m, 'the balancer appends the caller (Grafana) to X-Forwarded-For');
    // `haproxy -c` parses and checks the file (it cannot resolve the compose hosts here: a warning only).
    const { stdout, stderr } = await run('haproxy', ['-c', '-f', HAPROXY_CONFIG]);
    assert.match(stdout + stderr, /Configuration file is valid/);
  });

  test('two Prometheus replicas: one configuration, both instances, both Alertmanagers, replica a and b', async () => {
    const a = service(ha, 'prometheus');
    const b = service(ha, 'prometheus-b');
    assert.equal(b.image, a.image);
    assert.deepEqual(b.command, a.command);
    assert.ok((a.command as string[]).includes('--enable-feature=expand-external-labels'));
    for (const target of [
      '/etc/prometheus/prometheus.yml',
      '/etc/prometheus/controlroom/generated',
      '/etc/prometheus/controlroom/rules',
    ])
      assert.equal(mountOf(b, target), mountOf(a, target), `both mount ${target} from the same place`);
    assert.equal(mountOf(a, '/etc/prometheus/prometheus.yml'), PROMETHEUS_HA_CONFIG);
    assert.notEqual(mountOf(a, '/prometheus'), mountOf(b, '/prometheus'), 'each replica has its own data');
    assert.deepEqual([a.environment?.PROMETHEUS_REPLICA, b.environment?.PROMETHEUS_REPLICA], ['a', 'b']);
    assert.notDeepEqual(a.ports, b.ports);

    const prom = YAML.parse(fs.readFileSync(PROMETHEUS_HA_CONFIG, 'utf8')) as {
      global: { external_labels: Record<string, string> };
      alerting: {
        alertmanagers: Array<{ static_configs: Array<{ targets: string[] }> }>;
        alert_relabel_configs?: Array<{ action: string; regex: string }>;
      };
      scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
      rule_files: string[];
    };
    assert.deepEqual(prom.global.external_labels, { replica: `\${${HA_COMPOSE.replicaVariable}}` });
    assert.deepEqual(prom.scrape_configs.find((j) => j.job_name === 'controlroom')?.static_configs[0]?.targets, [
      ...HA_COMPOSE.instances,
    ]);
    assert.deepEqual(prom.alerting.alertmanagers[0]!.static_configs[0]!.targets, [...HA_COMPOSE.alertmanagers]);
    // Both replicas' alerts are the same alerts to Alertmanager: the replica label is dropped from alerts.
    assert.deepEqual(prom.alerting.alert_relabel_configs, [{ action: 'labeldrop', regex: 'replica' }]);
    for (const target of [...HA_COMPOSE.instances, ...HA_COMPOSE.alertmanagers])
      assert.ok(ha.services[hostOf(target)], `${target}: a service of the HA shape`);

    // promtool with the container's rule globs mapped to the repository's folders: every rule file is found.
    const mapped = prom.rule_files.map((glob) =>
      glob
        .replace('/etc/prometheus/controlroom/generated', RULE_DIRS[0]!)
        .replace('/etc/prometheus/controlroom/rules', RULE_DIRS[1]!)
    );
    const checked = path.join(dir, 'prometheus-ha.yml');
    fs.writeFileSync(checked, YAML.stringify({ ...prom, rule_files: mapped }));
    const { stdout, stderr } = await run('promtool', ['check', 'config', checked]);
    assert.match(stdout + stderr, new RegExp(`SUCCESS: ${ruleFiles().length} rule files found`));
  });

  test('two Alertmanagers: one configuration sending to the balancer, clustered with each other, each its own data', async () => {
    const a = service(ha, 'alertmanager');
    const b = service(ha, 'alertmanager-b');
    assert.equal(b.image, a.image);
    assert.deepEqual(b.entrypoint, a.entrypoint);
    assert.deepEqual(b.environment, a.environment);
    assert.deepEqual(b.tmpfs, a.tmpfs);
    assert.equal(mountOf(a, '/etc/alertmanager/alertmanager.yml'), ALERTMANAGER_HA_CONFIG);
    assert.equal(mountOf(b, '/etc/alertmanager/alertmanager.yml'), ALERTMANAGER_HA_CONFIG);
    assert.notEqual(mountOf(a, '/alertmanager'), mountOf(b, '/alertmanager'));
    assert.notDeepEqual(a.ports, b.ports);
    const flags = (s: Service) => (Array.isArray(s.command) ? s.command.join(' ') : (s.command ?? ''));
    const webPort = HA_COMPOSE.alertmanagers[0]!.split(':')[1];
    for (const [self, peer] of [
      [a, 'alertmanager-b'],
      [b, 'alertmanager'],
    ] as const) {
      assert.match(flags(self), /--cluster\.listen-address=0\.0\.0\.0:9094(\s|$)/);
      assert.match(flags(self), new RegExp(`--cluster\\.peer=${peer}:9094(\\s|$)`));
      assert.ok(!flags(self).includes('--cluster.listen-address= '), 'clustering is on');
      assert.ok(flags(self).includes('--config.file=/etc/alertmanager/alertmanager.yml'));
    }
    assert.deepEqual(HA_COMPOSE.alertmanagers, [`alertmanager:${webPort}`, `alertmanager-b:${webPort}`]);

    const am = YAML.parse(fs.readFileSync(ALERTMANAGER_HA_CONFIG, 'utf8')) as {
      receivers: Array<{ webhook_configs: Array<{ url: string }> }>;
    };
    assert.equal(am.receivers[0]!.webhook_configs[0]!.url, `http://${HA_COMPOSE.balancer}/webhooks/alertmanager`);
    const { stdout } = await run('amtool', ['check-config', ALERTMANAGER_HA_CONFIG]);
    assert.match(stdout, /SUCCESS/);
  });
});

describe('the HA files are derived from the default ones', () => {
  test('each committed file is what its source gives today (after an edit of a source: node --import tsx cli/stack/ha-files.ts)', () => {
    for (const { file, text } of HA_FILES)
      assert.equal(
        fs.readFileSync(file, 'utf8'),
        text(),
        `${path.relative(projectRoot, file)} drifted from its source: run node --import tsx cli/stack/ha-files.ts`
      );
  });

  test('a change of the source shows in the derived file: intervals and comments carry over, a missing receiver is named', () => {
    const promSource = path.join(dir, 'prometheus.yml');
    fs.writeFileSync(
      promSource,
      fs.readFileSync(PROMETHEUS_CONFIG_SOURCE, 'utf8').replace('scrape_interval: 15s', 'scrape_interval: 7s')
    );
    const prom = YAML.parse(haPrometheusConfig(promSource)) as { global: { scrape_interval: string } };
    assert.equal(prom.global.scrape_interval, '7s');
    assert.notEqual(haPrometheusConfig(promSource), fs.readFileSync(PROMETHEUS_HA_CONFIG, 'utf8'));
    assert.match(haPrometheusConfig(), /# The job must be named controlroom/);

    const amSource = path.join(dir, 'alertmanager.yml');
    fs.writeFileSync(amSource, 'route:\n  receiver: other\nreceivers:\n  - name: other\n');
    assert.throws(() => haAlertmanagerConfig(amSource), /has no receiver named controlroom/);
  });
});

test('both replicas running the HA file send the same alert, once to Alertmanager: the replica label is dropped from alerts only', async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'controlroom-ha-replicas-'));
  const children: StackChild[] = [];
  try {
    const rules = path.join(work, 'drill.rules.yml');
    fs.writeFileSync(
      rules,
      YAML.stringify({ groups: [{ name: 'ha-drill', rules: [{ alert: 'HaReplicaDrill', expr: 'vector(1)' }] }] })
    );
    const amPort = await freePort();
    const amFile = path.join(work, 'alertmanager.yml');
    // Nothing listens at the webhook: only what Alertmanager holds is read.
    fs.writeFileSync(
      amFile,
      alertmanagerConfig({ webhookUrl: 'http://127.0.0.1:9/none', tokenFile: null }, ALERTMANAGER_HA_CONFIG)
    );
    children.push(
      await startStackChild({
        name: 'alertmanager',
        command: ALERTMANAGER_BIN,
        args: [
          `--config.file=${amFile}`,
          `--storage.path=${path.join(work, 'am')}`,
          `--web.listen-address=127.0.0.1:${amPort}`,
          '--cluster.listen-address=',
        ],
        readyUrl: `http://127.0.0.1:${amPort}/-/ready`,
      })
    );
    const promFile = path.join(work, 'prometheus.yml');
    fs.writeFileSync(
      promFile,
      prometheusConfig(
        { scrapeTargets: [], alertmanagerTarget: [`127.0.0.1:${amPort}`], ruleFiles: [rules], intervalSeconds: 1 },
        PROMETHEUS_HA_CONFIG
      )
    );
    const replicas: string[] = [];
    for (const replica of ['a', 'b']) {
      const port = await freePort();
      replicas.push(`http://127.0.0.1:${port}`);
      children.push(
        await startStackChild({
          name: `prometheus-${replica}`,
          command: PROMETHEUS_BIN,
          args: [
            `--config.file=${promFile}`,
            `--storage.tsdb.path=${path.join(work, `prom-${replica}`)}`,
            `--web.listen-address=127.0.0.1:${port}`,
            '--rules.alert.resend-delay=1s',
            '--enable-feature=expand-external-labels',
          ],
          env: { [HA_COMPOSE.replicaVariable]: replica },
          readyUrl: `http://127.0.0.1:${port}/-/ready`,
        })
      );
    }
    // Each replica has sent the alert at least twice (so Alertmanager has had both replicas' copies).
    await waitUntil(
      async () => {
        const sent = await Promise.all(
          replicas.map(async (url) => {
            const text = await (await fetch(`${url}/metrics`)).text();
            return Number(/^prometheus_notifications_sent_total\{[^}]*\} (\S+)$/m.exec(text)?.[1] ?? 0);
          })
        );
        return sent.every((n) => n >= 2);
      },
      30_000,
      'both replicas to send the alert'
    );
    const alerts = (await (await fetch(`http://127.0.0.1:${amPort}/api/v2/alerts`)).json()) as Array<{
      labels: Record<string, string>;
    }>;
    assert.deepEqual(
      alerts.map((a) => a.labels),
      [{ alertname: 'HaReplicaDrill' }],
      'one alert, with no replica label'
    );
    // The label itself is set: each replica loaded the one file with its own value.
    for (const [i, url] of replicas.entries()) {
      const body = (await (await fetch(`${url}/api/v1/status/config`)).json()) as { data: { yaml: string } };
      assert.match(body.data.yaml, new RegExp(`replica: ${['a', 'b'][i]}\\n`));
    }
  } finally {
    for (const child of children.reverse()) await child.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
});
