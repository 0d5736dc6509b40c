import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { RULE_DIRS } from '../../alerting/rule-files.ts';
import { projectRoot } from '../../core/config.ts';

/**
 * The Prometheus and Alertmanager configuration of every stack this project runs (docker-compose,
 * `controlroom start`, the tests) has one source: provisioning/prometheus/prometheus.yml and
 * provisioning/alertmanager/alertmanager.yml. The embedded stack reads those files and rewrites only what
 * differs on one machine: scrape and Alertmanager targets, the receiver's URL, the rule file paths and
 * the token file. Intervals, grouping, routes and everything else come from the files, so a change there
 * changes every stack. Fails loudly when a file no longer has the part it rewrites (the job, the receiver).
 */

export const PROMETHEUS_CONFIG_SOURCE = path.join(projectRoot, 'provisioning', 'prometheus', 'prometheus.yml');
export const ALERTMANAGER_CONFIG_SOURCE = path.join(projectRoot, 'provisioning', 'alertmanager', 'alertmanager.yml');
/** The scrape job ControlRoomExporterDown selects (`up{job="controlroom"}`). */
const SCRAPE_JOB = 'controlroom';
/** The receiver every alert goes to. */
const RECEIVER = 'controlroom';

type Yaml = Record<string, unknown>;

const readYaml = (file: string): Yaml => YAML.parse(fs.readFileSync(file, 'utf8')) as Yaml;
const asList = (value: unknown, what: string): Yaml[] => {
  if (!Array.isArray(value)) throw new Error(`${what} is not a list`);
  return value as Yaml[];
};

export interface PrometheusConfigOptions {
  /** host:port targets of Control Room's /metrics (test stacks may scrape several, or none). */
  scrapeTargets: string[];
  /** host:port of the Alertmanager (or of each, for an HA pair), or null for none. */
  alertmanagerTarget: string | readonly string[] | null;
  /** Rule files or globs; the default is every `*.yml` of alerting/generated and alerting/rules. */
  ruleFiles?: string[];
  /**
   * Test stacks only: scrape and evaluation interval instead of the file's (15 s), so a test sees rules
   * evaluate within seconds. `controlroom start` uses the file's.
   */
  intervalSeconds?: number;
}

/** The Prometheus configuration (YAML text) derived from provisioning/prometheus/prometheus.yml. */
export function prometheusConfig(options: PrometheusConfigOptions, source = PROMETHEUS_CONFIG_SOURCE): string {
  const config = readYaml(source);
  const jobs = asList(config.scrape_configs, `${source}: scrape_configs`);
  const job = jobs.find((j) => j.job_name === SCRAPE_JOB);
  if (!job) throw new Error(`${source} has no scrape job named ${SCRAPE_JOB}`);
  job.static_configs = [{ targets: options.scrapeTargets }];
  config.rule_files = options.ruleFiles ?? RULE_DIRS.map((dir) => path.join(dir, '*.yml'));
  if (options.alertmanagerTarget) {
    const alerting = (config.alerting ?? {}) as Yaml;
    const managers = asList(alerting.alertmanagers, `${source}: alerting.alertmanagers`);
    if (managers.length !== 1) throw new Error(`${source}: expected one alertmanagers entry, found ${managers.length}`);
    const targets =
      typeof options.alertmanagerTarget === 'string' ? [options.alertmanagerTarget] : options.alertmanagerTarget;
    managers[0]!.static_configs = [{ targets: [...targets] }];
  } else {
    delete config.alerting;
  }
  if (options.intervalSeconds) {
    const global = (config.global ?? {}) as Yaml;
    global.scrape_interval = `${options.intervalSeconds}s`;
    global.evaluation_interval = `${options.intervalSeconds}s`;
    config.global = global;
  }
  return YAML.stringify(config);
}

export interface AlertmanagerConfigOptions {
  /** Control Room's /webhooks/alertmanager URL (or a test's recorder). */
  webhookUrl: string;
  /** File holding the bearer token; null sends no Authorization header (test recorders). */
  tokenFile: string | null;
  /** Test stacks only: group_wait and group_interval instead of the file's 30 s / 5 m. */
  groupSeconds?: number;
}

/** The Alertmanager configuration (YAML text) derived from provisioning/alertmanager/alertmanager.yml. */
export function alertmanagerConfig(options: AlertmanagerConfigOptions, source = ALERTMANAGER_CONFIG_SOURCE): string {
  const config = readYaml(source);
  const receivers = asList(config.receivers, `${source}: receivers`);
  const receiver = receivers.find((r) => r.name === RECEIVER);
  if (!receiver) throw new Error(`${source} has no receiver named ${RECEIVER}`);
  const hooks = asList(receiver.webhook_configs, `${source}: receiver ${RECEIVER}'s webhook_configs`);
  if (hooks.length !== 1) throw new Error(`${source}: expected one webhook_configs entry, found ${hooks.length}`);
  const hook = hooks[0]!;
  hook.url = options.webhookUrl;
  if (options.tokenFile) {
    const http = (hook.http_config ?? {}) as Yaml;
    const authorization = (http.authorization ?? {}) as Yaml;
    if (authorization.type && authorization.type !== 'Bearer')
      throw new Error(`${source}: expected a Bearer authorization, found ${String(authorization.type)}`);
    http.authorization = { ...authorization, type: 'Bearer', credentials_file: options.tokenFile };
    delete (http.authorization as Yaml).credentials;
    hook.http_config = http;
  } else {
    delete hook.http_config;
  }
  if (options.groupSeconds) {
    const route = config.route as Yaml;
    route.group_wait = `${options.groupSeconds}s`;
    route.group_interval = `${options.groupSeconds}s`;
  }
  return YAML.stringify(config);
}

// ---------------------------------------------------------------------------------------------------
// The compose HA shape's files, derived from the two above

/**
 * The compose HA shape (README "Production (HA)") runs two Prometheus replicas and two Alertmanagers.
 * Their configuration files are committed (compose mounts files, it cannot generate them) but derived
 * from the default ones: `haPrometheusConfig()` and `haAlertmanagerConfig()` below give the text, and
 * cli/stack/ha-compose.test.ts fails when the committed files differ from it, so an edit of the base files
 * that is not carried over (`node --import tsx cli/stack/ha-files.ts`) is caught. The HA fault test
 * (testing/ha-stack.ts) runs the committed HA files with only the hosts rewritten to loopback ports.
 */
export const PROMETHEUS_HA_CONFIG = path.join(projectRoot, 'provisioning', 'prometheus', 'prometheus-ha.yml');
export const ALERTMANAGER_HA_CONFIG = path.join(projectRoot, 'provisioning', 'alertmanager', 'alertmanager-ha.yml');
export const HAPROXY_CONFIG = path.join(projectRoot, 'provisioning', 'haproxy', 'haproxy.cfg');

/** The services of the HA shape as the derived files name them (docker-compose.ha.yml must agree: cli/stack/ha-compose.test.ts). */
export const HA_COMPOSE = {
  /** Both Control Room instances' /metrics, each scraped by both replicas. */
  instances: ['controlroom:8471', 'controlroom-b:8471'],
  /** Both Alertmanagers, each sent every alert by both replicas. */
  alertmanagers: ['alertmanager:9093', 'alertmanager-b:9093'],
  /** The load balancer in front of both instances: the one stable URL Alertmanager sends to. */
  balancer: 'controlroom-lb:8471',
  /**
   * Each replica's external label value: one file for both, the value from the environment
   * (`--enable-feature=expand-external-labels`), so the two replicas cannot differ in anything else.
   */
  replicaVariable: 'PROMETHEUS_REPLICA',
} as const;

/**
 * `host:port` of a compose service, as another stack reaches it: `hosts` maps each compose `host:port` the
 * HA files name to a loopback one. Throws for a target not in the map, so a service added to the files
 * without a place in the test stack fails loudly instead of being left pointing at nothing.
 */
export function rewriteTarget(target: string, hosts: Readonly<Record<string, string>>, where: string): string {
  const rewritten = hosts[target];
  if (!rewritten) throw new Error(`${where} names ${target}, which this stack does not run`);
  return rewritten;
}

/** The scrape and Alertmanager targets of the HA Prometheus file, as the compose services name them. */
export function haPrometheusTargets(source = PROMETHEUS_HA_CONFIG): { instances: string[]; alertmanagers: string[] } {
  const config = readYaml(source);
  const job = asList(config.scrape_configs, `${source}: scrape_configs`).find((j) => j.job_name === SCRAPE_JOB);
  const managers = asList((config.alerting as Yaml | undefined)?.alertmanagers, `${source}: alerting.alertmanagers`);
  const targetsOf = (entry: Yaml | undefined, what: string) =>
    asList(entry?.static_configs, `${source}: ${what} static_configs`).flatMap((c) => c.targets as string[]);
  return {
    instances: targetsOf(job, `job ${SCRAPE_JOB}'s`),
    alertmanagers: managers.flatMap((m) => targetsOf(m, 'alertmanagers')),
  };
}

/** The receiver URL of the HA Alertmanager file (the balancer's, as compose names it). */
export function haWebhookUrl(source = ALERTMANAGER_HA_CONFIG): URL {
  const config = readYaml(source);
  const receiver = asList(config.receivers, `${source}: receivers`).find((r) => r.name === RECEIVER);
  const hooks = asList(receiver?.webhook_configs, `${source}: receiver ${RECEIVER}'s webhook_configs`);
  return new URL(String(hooks[0]!.url));
}

/**
 * The HAProxy configuration (provisioning/haproxy/haproxy.cfg) for another stack: each `server`'s address
 * rewritten through `hosts` (see rewriteTarget) and the frontend bound to `bind` instead of the container's
 * port. Everything else (checks, retries, timeouts) is the file's.
 */
export function haproxyConfig(
  options: { hosts: Readonly<Record<string, string>>; bind: string },
  source = HAPROXY_CONFIG
): string {
  const text = fs.readFileSync(source, 'utf8');
  let binds = 0;
  const rewritten = text
    .replace(
      /^(\s*server\s+\S+\s+)(\S+)/gm,
      (_, head: string, target: string) => head + rewriteTarget(target, options.hosts, source)
    )
    .replace(/^(\s*bind\s+)(\S+)/gm, (_, head: string) => {
      binds += 1;
      return head + options.bind;
    });
  if (binds !== 1) throw new Error(`${source}: expected one bind line, found ${binds}`);
  return rewritten;
}

const GENERATED_NOTE = (source: string) =>
  ` Generated from ${path.relative(projectRoot, source)} by cli/stack/ha-files.ts for docker-compose.ha.yml;\n` +
  ' do not edit (cli/stack/ha-compose.test.ts fails when it drifts from its source).\n';

/**
 * prometheus.yml for both replicas of the HA shape: the default one, with both instances as scrape
 * targets, both Alertmanagers, the external label `replica` from PROMETHEUS_REPLICA, dropped from the
 * alerts sent (so both replicas' alerts are one to Alertmanager). Comments and everything else are kept.
 */
export function haPrometheusConfig(source = PROMETHEUS_CONFIG_SOURCE): string {
  const doc = YAML.parseDocument(fs.readFileSync(source, 'utf8'));
  const config = doc.toJS() as Yaml;
  const jobs = asList(config.scrape_configs, `${source}: scrape_configs`);
  const jobIndex = jobs.findIndex((j) => j.job_name === SCRAPE_JOB);
  if (jobIndex < 0) throw new Error(`${source} has no scrape job named ${SCRAPE_JOB}`);
  const managers = asList((config.alerting as Yaml | undefined)?.alertmanagers, `${source}: alerting.alertmanagers`);
  if (managers.length !== 1) throw new Error(`${source}: expected one alertmanagers entry, found ${managers.length}`);
  doc.setIn(['scrape_configs', jobIndex, 'static_configs'], doc.createNode([{ targets: [...HA_COMPOSE.instances] }]));
  doc.setIn(
    ['alerting', 'alertmanagers', 0, 'static_configs'],
    doc.createNode([{ targets: [...HA_COMPOSE.alertmanagers] }])
  );
  doc.setIn(['global', 'external_labels'], doc.createNode({ replica: `\${${HA_COMPOSE.replicaVariable}}` }));
  // Both replicas evaluate the same rules: the alerts they send must be identical, or Alertmanager would
  // hold two alerts (one per replica) for one condition. The replica label stays on everything else.
  const relabel = doc.createNode([{ action: 'labeldrop', regex: 'replica' }]);
  relabel.commentBefore =
    ' The two replicas send identical alerts (Alertmanager deduplicates them): the replica label is dropped\n' +
    ' from alerts only.';
  doc.setIn(['alerting', 'alert_relabel_configs'], relabel);
  doc.commentBefore = GENERATED_NOTE(source) + (doc.commentBefore ?? '');
  return doc.toString();
}

/**
 * alertmanager.yml for both Alertmanagers of the HA shape: the default one, sending to the load
 * balancer instead of the one instance. Comments and everything else are kept.
 */
export function haAlertmanagerConfig(source = ALERTMANAGER_CONFIG_SOURCE): string {
  const doc = YAML.parseDocument(fs.readFileSync(source, 'utf8'));
  const config = doc.toJS() as Yaml;
  const receivers = asList(config.receivers, `${source}: receivers`);
  const index = receivers.findIndex((r) => r.name === RECEIVER);
  if (index < 0) throw new Error(`${source} has no receiver named ${RECEIVER}`);
  const hooks = asList(receivers[index]!.webhook_configs, `${source}: receiver ${RECEIVER}'s webhook_configs`);
  if (hooks.length !== 1) throw new Error(`${source}: expected one webhook_configs entry, found ${hooks.length}`);
  const url = new URL(String(hooks[0]!.url));
  url.host = HA_COMPOSE.balancer;
  doc.setIn(['receivers', index, 'webhook_configs', 0, 'url'], url.toString());
  doc.commentBefore = GENERATED_NOTE(source) + (doc.commentBefore ?? '');
  return doc.toString();
}
