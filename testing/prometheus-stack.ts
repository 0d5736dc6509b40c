import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { alertmanagerConfig, prometheusConfig } from '../cli/stack/config.ts';
import { freePort } from './postgres.ts';
import { startProcess, type RunningProcess } from './processes.ts';

export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';
export const ALERTMANAGER_BIN = process.env.ALERTMANAGER_BIN ?? '/usr/bin/prometheus-alertmanager';

export interface PrometheusStack {
  prometheusUrl: string;
  alertmanagerUrl: string | null;
  /** Instant query; returns the result vector. */
  query(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  stop(): Promise<void>;
}

export interface StackOptions {
  /** host:port targets scraped as job "controlroom". */
  scrapeTargets: string[];
  ruleFiles: string[];
  /** When set, an Alertmanager is started that sends every alert to this webhook URL. */
  webhookUrl?: string;
  scrapeIntervalSeconds?: number;
}

/**
 * Real Prometheus (and optionally Alertmanager) from the Debian packages, on loopback ports, with
 * throwaway storage, configured from provisioning/ like every stack (cli/stack/config.ts). For tests only,
 * intervals and Alertmanager's group_wait/group_interval are 1 s, and Prometheus resends firing alerts
 * every second (`--rules.alert.resend-delay=1s`), so tests see rules evaluate and alerts flow within
 * seconds. Alerts are sent without credentials (tests point them at a recorder).
 */
export async function startPrometheusStack(options: StackOptions): Promise<PrometheusStack> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'controlroom-prom-'));
  const processes: RunningProcess[] = [];
  const intervalSeconds = options.scrapeIntervalSeconds ?? 1;
  try {
    let alertmanagerUrl: string | null = null;
    if (options.webhookUrl) {
      const alertmanager = await runAlertmanager(dir, { webhookUrl: options.webhookUrl });
      alertmanagerUrl = alertmanager.url;
      processes.push(alertmanager.process);
    }

    const promPort = await freePort();
    await fs.writeFile(
      path.join(dir, 'prometheus.yml'),
      prometheusConfig({
        scrapeTargets: options.scrapeTargets,
        alertmanagerTarget: alertmanagerUrl ? alertmanagerUrl.replace('http://', '') : null,
        ruleFiles: options.ruleFiles,
        intervalSeconds,
      })
    );
    const prometheusUrl = `http://127.0.0.1:${promPort}`;
    processes.push(
      await startProcess(
        PROMETHEUS_BIN,
        [
          `--config.file=${path.join(dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${path.join(dir, 'prom-data')}`,
          `--web.listen-address=127.0.0.1:${promPort}`,
          '--rules.alert.resend-delay=1s',
        ],
        `${prometheusUrl}/-/ready`
      )
    );

    return {
      prometheusUrl,
      alertmanagerUrl,
      async query(expr) {
        const res = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
        const body = (await res.json()) as { status: string; data?: { result: [] }; error?: string };
        if (body.status !== 'success') throw new Error(`query ${expr} failed: ${body.error}`);
        return body.data!.result;
      },
      async stop() {
        for (const p of processes.reverse()) await p.stop();
        await fs.rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    for (const p of processes.reverse()) await p.stop();
    throw error;
  }
}

export interface AlertmanagerOptions {
  /** Where it sends every alert group. */
  webhookUrl: string;
  /** The bearer it sends (Control Room's ALERTMANAGER_WEBHOOK_TOKEN); none when unset (test recorders). */
  webhookToken?: string;
  /** A port chosen beforehand (e.g. to give the service its ALERTMANAGER_URL first); a free one otherwise. */
  port?: number;
}

/** Alertmanager alone in `dir` (config, token file, storage), configured as in startPrometheusStack. */
async function runAlertmanager(
  dir: string,
  options: AlertmanagerOptions
): Promise<{ url: string; process: RunningProcess }> {
  const port = options.port ?? (await freePort());
  let tokenFile: string | null = null;
  if (options.webhookToken) {
    tokenFile = path.join(dir, 'webhook-token');
    await fs.writeFile(tokenFile, options.webhookToken, { mode: 0o600 });
  }
  await fs.writeFile(
    path.join(dir, 'alertmanager.yml'),
    alertmanagerConfig({ webhookUrl: options.webhookUrl, tokenFile, groupSeconds: 1 })
  );
  const url = `http://127.0.0.1:${port}`;
  const child = await startProcess(
    ALERTMANAGER_BIN,
    [
      `--config.file=${path.join(dir, 'alertmanager.yml')}`,
      `--storage.path=${path.join(dir, 'am-data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
    ],
    `${url}/-/ready`
  );
  return { url, process: child };
}

/** A real Alertmanager on its own (group_wait/group_interval 1 s), with throwaway storage. */
export async function startAlertmanager(options: AlertmanagerOptions): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'controlroom-am-'));
  try {
    const { url, process: child } = await runAlertmanager(dir, options);
    return {
      url,
      async stop() {
        await child.stop();
        await fs.rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await fs.rm(dir, { recursive: true, force: true });
    throw error;
  }
}
