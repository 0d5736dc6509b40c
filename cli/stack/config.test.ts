import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { ruleFiles } from '../../alerting/rule-files.ts';
import {
  ALERTMANAGER_CONFIG_SOURCE,
  alertmanagerConfig,
  PROMETHEUS_CONFIG_SOURCE,
  prometheusConfig,
} from './config.ts';

const run = promisify(execFile);
let dir: string;
before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'controlroom-stack-config-'));
});
after(async () => fs.rm(dir, { recursive: true, force: true }));

/** The parts of the two configurations these tests read (either file's). */
interface StackYaml {
  global: { scrape_interval?: string; external_labels?: Record<string, string> };
  scrape_configs: Array<{ job_name: string; static_configs: unknown }>;
  alerting?: { alertmanagers: Array<{ static_configs: unknown }> };
  rule_files: string[];
  route: { group_wait?: string; group_by?: string[] };
  receivers: Array<{
    webhook_configs: Array<{ url: string; send_resolved: boolean; http_config?: { authorization: unknown } }>;
  }>;
}
const parse = (text: string) => YAML.parse(text) as StackYaml;

test("start's Prometheus config is provisioning's with only targets and rule paths rewritten, and promtool accepts it", async () => {
  const source = parse(await fs.readFile(PROMETHEUS_CONFIG_SOURCE, 'utf8'));
  const text = prometheusConfig({ scrapeTargets: ['127.0.0.1:8471'], alertmanagerTarget: '127.0.0.1:9093' });
  const derived = parse(text);
  assert.deepEqual(derived.global, source.global, 'intervals are the compose stack’s (15 s)');
  assert.equal(derived.global.scrape_interval, '15s');
  const job = derived.scrape_configs.find((j: { job_name: string }) => j.job_name === 'controlroom');
  assert.deepEqual(job?.static_configs, [{ targets: ['127.0.0.1:8471'] }]);
  assert.deepEqual(derived.alerting?.alertmanagers[0]?.static_configs, [{ targets: ['127.0.0.1:9093'] }]);
  // Every rule file of both folders is evaluated, by glob, so a new file is picked up too.
  assert.deepEqual(derived.rule_files, [
    path.resolve('alerting/generated/*.yml'),
    path.resolve('alerting/rules/*.yml'),
  ]);
  const file = path.join(dir, 'prometheus.yml');
  await fs.writeFile(file, text);
  const { stdout } = await run('promtool', ['check', 'config', file]);
  assert.match(stdout, new RegExp(`SUCCESS: ${ruleFiles().length} rule files found`), stdout);
  for (const rules of ruleFiles())
    assert.match(stdout, new RegExp(`Checking ${rules}\\n  SUCCESS: \\d+ rules found`), stdout);
});

test('a change to provisioning/prometheus/prometheus.yml changes the derived config (one source)', async () => {
  const copy = path.join(dir, 'changed-prometheus.yml');
  const source = parse(await fs.readFile(PROMETHEUS_CONFIG_SOURCE, 'utf8'));
  source.global.scrape_interval = '30s';
  source.global.external_labels = { stack: 'changed' };
  await fs.writeFile(copy, YAML.stringify(source));
  const derived = parse(prometheusConfig({ scrapeTargets: ['127.0.0.1:1'], alertmanagerTarget: null }, copy));
  assert.equal(derived.global.scrape_interval, '30s');
  assert.deepEqual(derived.global.external_labels, { stack: 'changed' });
  assert.equal(derived.alerting, undefined, 'no Alertmanager: no alerting section');
  // A file without the job the exporter-down alert selects is refused, not silently scraped under another name.
  source.scrape_configs[0]!.job_name = 'renamed';
  await fs.writeFile(copy, YAML.stringify(source));
  assert.throws(
    () => prometheusConfig({ scrapeTargets: ['127.0.0.1:1'], alertmanagerTarget: null }, copy),
    /no scrape job named controlroom/
  );
});

test("start's Alertmanager config is provisioning's with the receiver URL and token file rewritten, and amtool accepts it", async () => {
  const source = parse(await fs.readFile(ALERTMANAGER_CONFIG_SOURCE, 'utf8'));
  const tokenFile = path.join(dir, 'webhook-token');
  await fs.writeFile(tokenFile, 'x'.repeat(32), { mode: 0o600 });
  const text = alertmanagerConfig({ webhookUrl: 'http://127.0.0.1:8471/webhooks/alertmanager', tokenFile });
  const derived = parse(text);
  assert.deepEqual(derived.route, source.route, 'grouping and timing are the compose stack’s');
  const hook = derived.receivers[0]!.webhook_configs[0]!;
  assert.equal(hook.url, 'http://127.0.0.1:8471/webhooks/alertmanager');
  assert.equal(hook.send_resolved, true);
  assert.deepEqual(hook.http_config?.authorization, { type: 'Bearer', credentials_file: tokenFile });
  const file = path.join(dir, 'alertmanager.yml');
  await fs.writeFile(file, text);
  const { stdout } = await run('amtool', ['check-config', file]);
  assert.match(stdout, /SUCCESS/);

  // Test stacks: no credentials (a recorder), 1 s grouping; the rest still from the file.
  const testStack = parse(
    alertmanagerConfig({ webhookUrl: 'http://127.0.0.1:1/alerts', tokenFile: null, groupSeconds: 1 })
  );
  assert.equal(testStack.receivers[0]!.webhook_configs[0]!.http_config, undefined);
  assert.equal(testStack.route.group_wait, '1s');
  assert.deepEqual(testStack.route.group_by, source.route.group_by);
});
