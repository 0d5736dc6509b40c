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
  /** host:port of the Alertmanager, or null for none. */
  alertmanagerTarget: string | null;
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
    managers[0]!.static_configs = [{ targets: [options.alertmanagerTarget] }];
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
