import { randomBytes } from 'node:crypto';
import type { Config } from '../config.ts';
import type { Logger } from '../../core/logger.ts';
import {
  findStackBinaries,
  startMonitoringStack,
  STACK_HOW_TO_INSTALL,
  type MonitoringStack,
  type StackBinaries,
} from './index.ts';

/**
 * `controlroom start`'s side of the stack: whether it runs, the webhook token of this run, and the start
 * itself. Kept out of cli/main.ts so the command has three hook points: plan (before the services, which
 * need the token), start (after them, since Prometheus scrapes them), banner.
 */

export interface StackPlan {
  binaries: StackBinaries;
  /** The service's configuration with the receiver's bearer token of this run. */
  config: Config;
  webhookToken: string;
}

/**
 * Null (with one log line saying why and how to get the binaries) when the stack is off: `--no-stack`,
 * or Prometheus or Alertmanager not on PATH. Otherwise the binaries and the token Alertmanager will send:
 * ALERTMANAGER_WEBHOOK_TOKEN when set, else a new random one for this run (never written to a log).
 */
export function planStack(enabled: boolean, config: Config, logger: Logger): StackPlan | null {
  if (!enabled) {
    logger.info(
      `Prometheus and Alertmanager are off (--no-stack): no alert fires in this run. To run them, drop --no-stack (install them with \`${STACK_HOW_TO_INSTALL}\`)`
    );
    return null;
  }
  const found = findStackBinaries();
  if ('missing' in found) {
    logger.warn(
      { missing: found.missing },
      `${found.missing.join(' and ')} not found on PATH: Control Room runs without Prometheus and Alertmanager, so no alert fires. Install them with \`${STACK_HOW_TO_INSTALL}\``
    );
    return null;
  }
  const webhookToken = config.ALERTMANAGER_WEBHOOK_TOKEN ?? randomBytes(32).toString('hex');
  // The Incidents page's silences go to the child Alertmanager unless ALERTMANAGER_URL names another.
  const alertmanagerUrl = config.ALERTMANAGER_URL ?? `http://127.0.0.1:${config.ALERTMANAGER_PORT}`;
  return {
    binaries: found,
    webhookToken,
    config: { ...config, ALERTMANAGER_WEBHOOK_TOKEN: webhookToken, ALERTMANAGER_URL: alertmanagerUrl },
  };
}

/** Starts Prometheus and Alertmanager against the running service; a port taken names the setting. */
export async function startStack(plan: StackPlan, servicePort: number, logger: Logger): Promise<MonitoringStack> {
  const { config } = plan;
  try {
    return await startMonitoringStack({
      binaries: plan.binaries,
      dataDir: config.CONTROLROOM_DATA_DIR,
      prometheusPort: config.PROMETHEUS_PORT,
      alertmanagerPort: config.ALERTMANAGER_PORT,
      scrapeTarget: `127.0.0.1:${servicePort}`,
      webhookUrl: `http://127.0.0.1:${servicePort}/webhooks/alertmanager`,
      webhookToken: plan.webhookToken,
      ...(config.STACK_INTERVAL_SECONDS ? { intervalSeconds: config.STACK_INTERVAL_SECONDS } : {}),
      logger,
      onUnexpectedExit: (child, exit) =>
        logger.error(
          { pid: child.pid, code: exit.code, signal: exit.signal, lastOutput: child.output().split('\n').slice(-5) },
          `${child.name} exited while Control Room was running: no alert fires until the next start`
        ),
    });
  } catch (error) {
    throw new Error(
      `Prometheus/Alertmanager did not start (ports PROMETHEUS_PORT=${config.PROMETHEUS_PORT}, ALERTMANAGER_PORT=${config.ALERTMANAGER_PORT}; ` +
        `pick free ones, or pass --no-stack): ${(error as Error).message}`
    );
  }
}

export interface BannerFacts {
  port: number;
  host: string;
  stack: MonitoringStack | null;
  demo: boolean;
  embeddedDataDir: string | null;
}

/** What a person at the terminal needs first: every URL, and what to do next. */
export function bannerLines(facts: BannerFacts): string[] {
  const base = `http://localhost:${facts.port}`;
  const lines = [
    'Control Room is running',
    `  metrics         ${base}/metrics`,
    `  health          ${base}/healthz`,
    `  release freeze  ${base}/api/freeze`,
    `  control API     ${base}/api/  (needs CONTROLROOM_AUTH, see README "Control API access")`,
    `  webhooks        ${base}/webhooks/alertmanager, /webhooks/grafana, /webhooks/github, /webhooks/stripe`,
  ];
  if (facts.stack) {
    lines.push(
      `  Prometheus      ${facts.stack.prometheusUrl}/alerts`,
      `  Alertmanager    ${facts.stack.alertmanagerUrl}`
    );
  } else {
    lines.push(`  Prometheus      not running (--no-stack, or not installed: ${STACK_HOW_TO_INSTALL})`);
  }
  lines.push(
    '  Grafana         not part of `start`: run `docker compose up` for the full stack with Grafana (README "With Docker")'
  );
  if (facts.embeddedDataDir) lines.push(`  data            ${facts.embeddedDataDir} (kept between starts)`);
  if (facts.demo) {
    lines.push(
      facts.stack
        ? '  demo            incidents every hour at :10, :35 and :50; trigger one now: npx controlroom demo --incident error_burst'
        : '  demo            traffic and incidents are written, but without Prometheus no alert fires'
    );
  }
  lines.push('  Ctrl-C stops everything, in order.');
  return lines;
}

/**
 * The banner: a block of text on a terminal, one JSON line (`control room started`, with the URLs)
 * otherwise, so log shippers and tests read it as any other line.
 */
export function printBanner(facts: BannerFacts, logger: Logger): void {
  const urls = {
    metrics: `http://localhost:${facts.port}/metrics`,
    api: `http://localhost:${facts.port}/api/`,
    prometheus: facts.stack?.prometheusUrl ?? null,
    alertmanager: facts.stack?.alertmanagerUrl ?? null,
    grafana: 'docker compose up',
  };
  if (process.stdout.isTTY) process.stdout.write(`\n${bannerLines(facts).join('\n')}\n\n`);
  logger.info(urls, 'control room started');
}
