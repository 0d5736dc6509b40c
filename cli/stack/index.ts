import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../core/logger.ts';
import { startStackChild, type StackChild } from './child.ts';
import { alertmanagerConfig, prometheusConfig } from './config.ts';

export { alertmanagerConfig, prometheusConfig } from './config.ts';
export { startStackChild, type StackChild } from './child.ts';

/** The Debian package names first (scripts/setup.sh installs them), then the upstream name. */
const PROMETHEUS_NAMES = ['prometheus'];
const ALERTMANAGER_NAMES = ['prometheus-alertmanager', 'alertmanager'];
export const STACK_HOW_TO_INSTALL = 'bash scripts/setup.sh';

function onPath(names: readonly string[], env: NodeJS.ProcessEnv): string | null {
  for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    for (const name of names) {
      const candidate = path.join(dir, name);
      try {
        fs.accessSync(candidate, fs.constants.X_OK);
        if (fs.statSync(candidate).isFile()) return candidate;
      } catch {
        // not here
      }
    }
  }
  return null;
}

export interface StackBinaries {
  prometheus: string;
  alertmanager: string;
}

/**
 * Where the two binaries are: PROMETHEUS_BIN / ALERTMANAGER_BIN when set, else the first match on PATH.
 * Returns the names not found instead when either is missing.
 */
export function findStackBinaries(env: NodeJS.ProcessEnv = process.env): StackBinaries | { missing: string[] } {
  const prometheus = env.PROMETHEUS_BIN || onPath(PROMETHEUS_NAMES, env);
  const alertmanager = env.ALERTMANAGER_BIN || onPath(ALERTMANAGER_NAMES, env);
  if (prometheus && alertmanager) return { prometheus, alertmanager };
  return {
    missing: [...(prometheus ? [] : PROMETHEUS_NAMES), ...(alertmanager ? [] : ALERTMANAGER_NAMES.slice(0, 1))],
  };
}

export interface MonitoringStackOptions {
  binaries: StackBinaries;
  /** CONTROLROOM_DATA_DIR: Prometheus keeps `prometheus/`, Alertmanager `alertmanager/` under it. */
  dataDir: string;
  prometheusPort: number;
  alertmanagerPort: number;
  /** host:port of Control Room's /metrics. */
  scrapeTarget: string;
  /** Control Room's /webhooks/alertmanager. */
  webhookUrl: string;
  /** The bearer Alertmanager sends: the receiver's ALERTMANAGER_WEBHOOK_TOKEN for this run. */
  webhookToken: string;
  /** Scrape and evaluation interval instead of provisioning's 15 s (STACK_INTERVAL_SECONDS; tests only). */
  intervalSeconds?: number;
  logger: Logger;
  /** Called when a child exits while the stack should be running (crash, or killed by someone else). */
  onUnexpectedExit?: (child: StackChild, exit: { code: number | null; signal: NodeJS.Signals | null }) => void;
}

export interface MonitoringStack {
  prometheusUrl: string;
  alertmanagerUrl: string;
  children: StackChild[];
  /** Prometheus first (no alert is sent to a stopped Alertmanager), then Alertmanager. */
  stop(): Promise<void>;
}

/**
 * Starts Alertmanager, then Prometheus, on 127.0.0.1, configured from provisioning/ (cli/stack/config.ts),
 * each in its own process group with its data kept under the data directory between starts. Alertmanager
 * runs with `--cluster.listen-address=` (no HA gossip port on 0.0.0.0:9094). The generated configuration
 * and the token file are rewritten on every start; the token file is readable by this user only.
 */
export async function startMonitoringStack(options: MonitoringStackOptions): Promise<MonitoringStack> {
  const promDir = path.resolve(options.dataDir, 'prometheus');
  const amDir = path.resolve(options.dataDir, 'alertmanager');
  await Promise.all([fsp.mkdir(promDir, { recursive: true }), fsp.mkdir(amDir, { recursive: true })]);
  const tokenFile = path.join(amDir, 'webhook-token');
  await fsp.rm(tokenFile, { force: true });
  await fsp.writeFile(tokenFile, options.webhookToken, { mode: 0o600 });
  await fsp.writeFile(
    path.join(amDir, 'alertmanager.yml'),
    alertmanagerConfig({ webhookUrl: options.webhookUrl, tokenFile })
  );
  const alertmanagerTarget = `127.0.0.1:${options.alertmanagerPort}`;
  await fsp.writeFile(
    path.join(promDir, 'prometheus.yml'),
    prometheusConfig({
      scrapeTargets: [options.scrapeTarget],
      alertmanagerTarget,
      ...(options.intervalSeconds ? { intervalSeconds: options.intervalSeconds } : {}),
    })
  );

  const children: StackChild[] = [];
  let stopping = false;
  const watch = (child: StackChild) => {
    children.push(child);
    void child.exited.then((exit) => {
      if (!stopping) options.onUnexpectedExit?.(child, exit);
    });
  };
  const stop = async () => {
    stopping = true;
    for (const child of children.splice(0).reverse()) await child.stop();
  };
  const common = (name: string) => ({
    ownProcessGroup: true,
    onLine: (line: string) => options.logger.debug({ component: name }, line),
    onLeftoverStopped: (message: string, details: { pid: number; ownerPid: number }) =>
      options.logger.warn(details, message),
  });
  try {
    const alertmanagerUrl = `http://${alertmanagerTarget}`;
    watch(
      await startStackChild({
        name: 'alertmanager',
        command: options.binaries.alertmanager,
        args: [
          `--config.file=${path.join(amDir, 'alertmanager.yml')}`,
          `--storage.path=${path.join(amDir, 'data')}`,
          `--web.listen-address=${alertmanagerTarget}`,
          '--cluster.listen-address=',
        ],
        readyUrl: `${alertmanagerUrl}/-/ready`,
        dataDir: amDir,
        ...common('alertmanager'),
      })
    );
    const prometheusUrl = `http://127.0.0.1:${options.prometheusPort}`;
    watch(
      await startStackChild({
        name: 'prometheus',
        command: options.binaries.prometheus,
        args: [
          `--config.file=${path.join(promDir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${path.join(promDir, 'data')}`,
          `--web.listen-address=127.0.0.1:${options.prometheusPort}`,
        ],
        readyUrl: `${prometheusUrl}/-/ready`,
        dataDir: promDir,
        // A restart replays the write-ahead log of the kept data first.
        timeoutMs: 120_000,
        ...common('prometheus'),
      })
    );
    return { prometheusUrl, alertmanagerUrl, children, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
