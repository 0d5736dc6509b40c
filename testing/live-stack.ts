import { ruleFiles } from '../alerting/rule-files.ts';
import { startServices, type RunningServices } from '../cli/services.ts';
import { loadConfig } from '../cli/config.ts';
import { createLogger } from '../core/logger.ts';
import { createDemoState, runDemoTick, seedDemo } from '../db/demo/index.ts';
import { createTestDatabase, type TestDatabase } from './postgres.ts';
import { startPrometheusStack, type PrometheusStack } from './prometheus-stack.ts';

export const RULE_FILES = ruleFiles();

export interface LiveStackOptions {
  tenants: number;
  backfillDays: number;
  requestsPerSecond: number;
  slowRefreshMs: number;
  /** When set, a real Alertmanager sends every alert here. */
  webhookUrl?: string;
  /** The demo clock of tick i (one tick a second): lets a test replay incident minutes. */
  clock: (tick: number) => Date;
}

export interface LiveStack {
  db: TestDatabase;
  services: RunningServices;
  stack: PrometheusStack;
  stop(): Promise<void>;
}

/**
 * The whole monitoring path, live: a throwaway database seeded with demo tenants, the service on it, a
 * real Prometheus scraping it with the generated and operational rules (and optionally a real
 * Alertmanager), and demo traffic written every second until stopped.
 */
export async function startLiveStack(options: LiveStackOptions): Promise<LiveStack> {
  const db = await createTestDatabase();
  await seedDemo(db.pool, { tenants: options.tenants, backfillDays: options.backfillDays });
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    EXPORTER_REFRESH_MS: '1000',
    EXPORTER_SLOW_REFRESH_MS: String(options.slowRefreshMs),
    // Demo overage prices, so the scorecard's overage share has dollars once the demo bills overage.
    KPI_OVERAGE_UNIT_PRICES: JSON.stringify({ rates: 0.5, directory: 1, bulk_rating: 20, api_access: 0.002 }),
  });
  const services = await startServices(db.url, config, createLogger('silent'));
  const stack = await startPrometheusStack({
    scrapeTargets: [`127.0.0.1:${services.port}`],
    ruleFiles: RULE_FILES,
    ...(options.webhookUrl ? { webhookUrl: options.webhookUrl } : {}),
  });
  const state = createDemoState({ tenants: options.tenants, requestsPerSecond: options.requestsPerSecond });
  let running = true;
  const traffic = (async () => {
    for (let i = 0; running; i++) {
      await runDemoTick(db.pool, state, options.clock(i));
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  return {
    db,
    services,
    stack,
    async stop() {
      running = false;
      await traffic;
      await stack.stop();
      await services.stop();
      await db.drop();
    },
  };
}
