import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig, type Config } from '../core/config.ts';
import { createPool } from '../core/db.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import { GAMEDAY_SCENARIOS, runDrill, runGameDay, type GameDayScenario } from '../control/failover/index.ts';
import { seedDemo, startDemoTraffic } from '../db/demo/index.ts';
import { startDemoRegions } from '../db/demo/regions.ts';
import { registerEvidenceCommands } from '../evidence/cli.ts';
import { startEmbeddedPostgres } from '../db/embedded.ts';
import { migrate } from '../db/migrate.ts';
import { startServices } from './services.ts';

type Stop = () => Promise<void>;

function requireDatabaseUrl(config: Config): string {
  if (!config.DATABASE_URL) throw new Error('DATABASE_URL is not set: this command runs against an existing Postgres');
  return config.DATABASE_URL;
}

const positiveInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return n;
};

/** Stops everything started, last first, on SIGINT/SIGTERM. */
/** The demo traffic writer's own small pool, apart from the service's (`start` and `demo` share it). */
const createDemoPool = (url: string) => createPool(url, { max: 2, statementTimeoutMs: 30_000, applicationName: 'controlroom-demo' });

function stopOnSignal(logger: Logger, stops: Stop[]): void {
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    for (const stop of [...stops].reverse()) await stop().catch((err) => logger.error({ err }, 'shutdown step failed'));
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

async function migrated(url: string, logger: Logger): Promise<void> {
  const applied = await migrate(url, logger);
  logger.info({ applied }, applied.length ? 'migrations applied' : 'schema up to date');
}

const program = new Command('controlroom').description('Control Room: SLOs, alerts and controls for the TMS');

program
  .command('start')
  .description('embedded Postgres (or DATABASE_URL) + migrations + demo traffic + all services')
  .option('--no-demo', 'do not generate demo traffic')
  .action(async (options: { demo: boolean }) => {
    const config = loadConfig();
    const logger = createLogger(config.LOG_LEVEL);
    const stops: Stop[] = [];
    stopOnSignal(logger, stops);
    let url = config.DATABASE_URL;
    if (!url) {
      const dataDir = path.join(config.CONTROLROOM_DATA_DIR, 'postgres');
      const embedded = await startEmbeddedPostgres({ dataDir, port: config.EMBEDDED_PG_PORT });
      stops.push(embedded.stop);
      url = embedded.url;
      logger.info({ dataDir, port: embedded.port, url }, 'embedded postgres running');
    }
    await migrated(url, logger);
    const demoPool = options.demo
      ? createDemoPool(url)
      : null;
    // Seeded before the exporter's first refresh, so the first scrape already shows tenants and funnels.
    if (demoPool) await seedDemo(demoPool);
    if (options.demo && !config.FAILOVER_REGIONS) {
      const regions = await startDemoRegions(logger);
      stops.push(regions.stop);
    }
    const services = await startServices(url, config, logger);
    stops.push(services.stop);
    if (demoPool) {
      const demo = startDemoTraffic(demoPool, {}, logger);
      stops.push(async () => {
        await demo.stop();
        await demoPool.end();
      });
    }
    logger.info({ metrics: `http://localhost:${services.port}/metrics` }, 'control room started');
  });

program
  .command('serve')
  .description('all services against DATABASE_URL, no demo data')
  .option('--no-migrate', 'do not apply pending migrations first')
  .action(async (options: { migrate: boolean }) => {
    const config = loadConfig();
    const logger = createLogger(config.LOG_LEVEL);
    const url = requireDatabaseUrl(config);
    const stops: Stop[] = [];
    stopOnSignal(logger, stops);
    if (options.migrate) await migrated(url, logger);
    const services = await startServices(url, config, logger);
    stops.push(services.stop);
  });

program
  .command('migrate')
  .description('apply pending migrations to DATABASE_URL')
  .action(async () => {
    const config = loadConfig();
    const logger = createLogger(config.LOG_LEVEL);
    await migrated(requireDatabaseUrl(config), logger);
  });

program
  .command('demo')
  .description('generate demo TMS traffic into DATABASE_URL until stopped')
  .option('--rps <n>', 'peak API requests per second', positiveInt, 25)
  .option('--tenants <n>', 'demo tenants to seed', positiveInt, 60)
  .option('--seed <n>', 'random seed', positiveInt, 42)
  .option('--serve-regions <host>', 'also serve the two demo regions (ports 18481, 18482) on this address')
  .action(async (options: { rps: number; tenants: number; seed: number; serveRegions?: string }) => {
    const config = loadConfig();
    const logger = createLogger(config.LOG_LEVEL);
    const pool = createDemoPool(requireDatabaseUrl(config));
    const stops: Stop[] = [];
    stopOnSignal(logger, stops);
    if (options.serveRegions) {
      const regions = await startDemoRegions(logger, options.serveRegions);
      stops.push(regions.stop);
    }
    const demo = startDemoTraffic(pool, { requestsPerSecond: options.rps, tenants: options.tenants, seed: options.seed }, logger);
    stops.push(async () => {
      await demo.stop();
      await pool.end();
    });
  });

program
  .command('drill')
  .description('planned failover drill against local test regions; records RTO/RPO as evidence')
  .action(async () => {
    const config = loadConfig();
    const logger = createLogger(config.LOG_LEVEL);
    const pool = createPool(requireDatabaseUrl(config), {
      max: 4,
      statementTimeoutMs: config.PG_STATEMENT_TIMEOUT_MS,
      applicationName: 'controlroom-drill',
    });
    try {
      const result = await runDrill({ pool, config, logger });
      console.log(JSON.stringify(result, null, 2));
      if (result.outcome !== 'passed') process.exitCode = 1;
    } finally {
      await pool.end();
    }
  });

program
  .command('gameday')
  .description('scripted game day against local simulated regions (primary-db-loss | upstream-degraded); recorded like a drill')
  .argument('<scenario>', `one of: ${GAMEDAY_SCENARIOS.join(', ')}`, (value: string) => {
    if (!(GAMEDAY_SCENARIOS as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of: ${GAMEDAY_SCENARIOS.join(', ')}`);
    return value as GameDayScenario;
  })
  .action(async (scenario: GameDayScenario) => {
    const config = loadConfig();
    const logger = createLogger(config.LOG_LEVEL);
    const pool = createPool(requireDatabaseUrl(config), {
      max: 4,
      statementTimeoutMs: config.PG_STATEMENT_TIMEOUT_MS,
      applicationName: 'controlroom-gameday',
    });
    try {
      const result = await runGameDay({ pool, config, logger, scenario });
      console.log(JSON.stringify(result, null, 2));
      // A failed game day is a failed command: scripts and CI see it.
      if (result.outcome !== 'passed') process.exitCode = 1;
    } finally {
      await pool.end();
    }
  });

registerEvidenceCommands(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(`controlroom: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
