import { ruleFiles } from '../alerting/rule-files.ts';
import { submitJob } from '../control/bulk/jobs.ts';
import { ingestJson } from '../control/bulk/ingest.ts';
import { createRatingService, promoteCandidate, registerModel, SEED_V1 } from '../control/rating/index.ts';
import { insertCompany } from './companies.ts';
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
  await rateOneBulkJobWithACandidate(db, stack);
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

const CITIES = ['Chicago, IL', 'Atlanta, GA', 'Dallas, TX', 'Denver, CO', 'Seattle, WA', 'Boston, MA', 'Miami, FL'];

/**
 * Demo traffic writes TMS rows only, and bulk rating is Control Room's own: one real job (submitted as
 * the bulk API does, rated by the service's own worker) with a candidate model taking half of the lanes
 * gives the pricing-drift series and their recording rule something to show. The candidate is 30% dearer
 * on vans, so some of its lanes are anomalies; the candidate rates about 42 lanes, under
 * PRICING_ANOMALY_ALERT_MIN_LANES (100), so PricingCandidateAnomalies stays silent in the alerting tests.
 */
async function rateOneBulkJobWithACandidate(db: TestDatabase, stack: PrometheusStack): Promise<void> {
  const actor = 'controlroom:live-stack';
  const dearVans = { ...SEED_V1.ratePerMile, van: SEED_V1.ratePerMile.van * 1.3 };
  await registerModel(db.pool, { ...structuredClone(SEED_V1), version: 'v2-live', ratePerMile: dearVans }, actor);
  await promoteCandidate(db.pool, 'v2-live', 0.5, actor);
  // A seeded Enterprise tenant (unlimited bulk rating, so the job moves no usage alert), else a new one.
  const { rows } = await db.pool.query<{ company_id: string }>(
    `SELECT company_id FROM org_entitlements WHERE plan_id = 'enterprise' ORDER BY company_id LIMIT 1`
  );
  const companyId = rows[0]?.company_id ?? (await insertCompany(db.pool, 'Live stack bulk shipper', 'enterprise'));
  const today = new Date().toISOString().slice(0, 10);
  const pickupDate = new Date(Date.now() + 7 * 86_400_000).toISOString().slice(0, 10);
  const lanes = CITIES.flatMap((origin) =>
    CITIES.filter((d) => d !== origin).flatMap((destination) =>
      ['van', 'reefer'].map((equipment) => ({ origin, destination, equipment, pickup_date: pickupDate }))
    )
  );
  // rate() needs the counters seen before the lanes: wait until Prometheus has scraped the new candidate's
  // zero series, then submit.
  for (let i = 0; ; i++) {
    const seen = await stack.query('controlroom_pricing_lanes_rated_total{model_version="v2-live"}');
    if (seen.length > 0) break;
    if (i > 300) throw new Error("Prometheus never scraped the candidate model's pricing series");
    await new Promise((r) => setTimeout(r, 200));
  }
  const limits = { maxBytes: 1 << 20, maxLanes: 1_000, maxErrorsReported: 10 };
  const ingest = ingestJson(lanes, JSON.stringify({ lanes }), limits, createRatingService().checkLocation, today);
  await submitJob(db.pool, {
    companyId,
    actor,
    idempotencyKey: null,
    source: 'json',
    filename: null,
    ingest,
    ipAddress: null,
    userAgent: null,
  });
}
