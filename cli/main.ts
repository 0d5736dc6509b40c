import os from 'node:os';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig, type Config } from './config.ts';
import { createPool, poolTimeouts, type Pool } from '../core/db.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import { GAMEDAY_SCENARIOS, type GameDayScenario } from '../control/failover/gameday.ts';
import { DEMO_INCIDENT_NAMES, demoIncidentList, isDemoIncidentName } from '../db/demo/incident-names.ts';
import { registerEvidenceCommands } from '../evidence/cli.ts';
import { Lifecycle } from './lifecycle.ts';

// Each command imports what it runs when it runs: `evidence verify` or a mistyped option does not load
// the services, the queue or the Stripe and GitHub clients.
const services = () => import('./services.ts');
const demoTraffic = () => import('../db/demo/index.ts');
const demoRegions = () => import('../db/demo/regions.ts');
const monitoringStack = () => import('./stack/start.ts');

function requireDatabaseUrl(config: Config): string {
  if (!config.DATABASE_URL) throw new Error('DATABASE_URL is not set: this command runs against an existing Postgres');
  return config.DATABASE_URL;
}

const positiveInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return n;
};

/** The demo traffic writer's own small pool, apart from the service's (`start` and `demo` share it). */
const createDemoPool = (url: string) =>
  createPool(url, { max: 2, statementTimeoutMs: 30_000, applicationName: 'controlroom-demo' });

async function migrated(url: string, logger: Logger): Promise<void> {
  const { migrate } = await import('../db/migrate.ts');
  const applied = await migrate(url, logger);
  logger.info({ applied }, applied.length ? 'migrations applied' : 'schema up to date');
}

const program = new Command('controlroom').description('Control Room: SLOs, alerts and controls for the TMS');

program
  .command('start')
  .description('embedded Postgres (or DATABASE_URL) + migrations + demo traffic + all services')
  .option('--no-demo', 'do not generate demo traffic')
  .option('--no-stack', 'do not run Prometheus and Alertmanager (otherwise run when on PATH)')
  .action(async (options: { demo: boolean; stack: boolean }) => {
    const config = loadConfig();
    const logger = createLogger(config.LOG_LEVEL, undefined, config.LOG_FORMAT);
    const lifecycle = new Lifecycle(logger);
    const { planStack, startStack, printBanner } = await monitoringStack();
    // Decided first: the services need the webhook token Alertmanager will send.
    const stackPlan = planStack(options.stack, config, logger);
    await lifecycle.start(async () => {
      let url = config.DATABASE_URL;
      if (!url) {
        // Loaded only here: the other commands never touch the embedded cluster.
        const { startEmbeddedPostgres } = await import('../db/embedded.ts');
        const dataDir = path.join(config.CONTROLROOM_DATA_DIR, 'postgres');
        const embedded = await startEmbeddedPostgres({
          dataDir,
          port: config.EMBEDDED_PG_PORT,
          onLeftoverStopped: (message, details) => logger.warn(details, message),
          onLog: (line) => logger.debug({ component: 'postgres' }, line),
        });
        // Registered first, so it stops last, after every pool that uses it is closed.
        lifecycle.onStop('embedded postgres', embedded.stop);
        // Postgres going away under the services (killed, crashed) stops Control Room with exit code 1.
        void embedded.exited.then(() => {
          if (lifecycle.stopping) return;
          logger.fatal({ pid: embedded.pid }, 'the embedded Postgres exited while Control Room was running');
          void lifecycle.shutdown('embedded postgres exited', 1);
        });
        url = embedded.url;
        // The URL carries the embedded password: the logger redacts it (core/logger.ts).
        logger.info({ url, dataDir, port: embedded.port, pid: embedded.pid }, 'embedded postgres running');
      }
      if (lifecycle.stopping) return;
      await migrated(url, logger);
      const { seedDemo, startDemoTraffic } = await demoTraffic();
      const demoPool = options.demo ? createDemoPool(url) : null;
      if (demoPool) lifecycle.onStop('demo pool', () => demoPool.end());
      // Seeded before the exporter's first refresh, so the first scrape already shows tenants and funnels.
      if (demoPool) await seedDemo(demoPool);
      if (options.demo && !config.FAILOVER_REGIONS) {
        const regions = await (await demoRegions()).startDemoRegions(logger);
        lifecycle.onStop('demo regions', regions.stop);
      }
      if (lifecycle.stopping) return;
      const running = await (await services()).startServices(url, stackPlan?.config ?? config, logger);
      lifecycle.onStop('services', running.stop);
      if (demoPool) {
        const demo = startDemoTraffic(demoPool, {}, logger);
        lifecycle.onStop('demo traffic', demo.stop);
      }
      if (lifecycle.stopping) return;
      // Started last, so stopped first: Prometheus, then Alertmanager, while the service still answers
      // their last scrape and webhook; then the demo, the services and Postgres.
      const stack = stackPlan ? await startStack(stackPlan, running.port, logger) : null;
      if (stack) lifecycle.onStop('prometheus and alertmanager', stack.stop);
      printBanner(
        {
          port: running.port,
          host: config.HOST,
          stack,
          demo: options.demo,
          embeddedDataDir: config.DATABASE_URL ? null : config.CONTROLROOM_DATA_DIR,
        },
        logger
      );
    });
  });

program
  .command('serve')
  .description('all services against DATABASE_URL, no demo data')
  .option('--no-migrate', 'do not apply pending migrations first')
  .action(async (options: { migrate: boolean }) => {
    const config = loadConfig();
    const logger = createLogger(config.LOG_LEVEL);
    const url = requireDatabaseUrl(config);
    const lifecycle = new Lifecycle(logger);
    await lifecycle.start(async () => {
      if (options.migrate) await migrated(url, logger);
      if (lifecycle.stopping) return;
      const running = await (await services()).startServices(url, config, logger);
      lifecycle.onStop('services', running.stop);
    });
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
  .description('generate demo TMS traffic into DATABASE_URL until stopped, or trigger one incident now (--incident)')
  .option('--rps <n>', 'peak API requests per second', positiveInt, 25)
  .option('--tenants <n>', 'demo tenants to seed', positiveInt, 60)
  .option('--seed <n>', 'random seed', positiveInt, 42)
  .option('--serve-regions <host>', 'also serve the two demo regions (ports 18481, 18482) on this address')
  .option(
    '--incident <name>',
    `play one incident now against the running demo and exit (${DEMO_INCIDENT_NAMES.join(', ')}); ` +
      'uses DATABASE_URL, or the embedded Postgres of `controlroom start` when unset'
  )
  .addHelpText('after', `\nIncidents (--incident NAME):\n${demoIncidentList()}\n`)
  .action(async (options: { rps: number; tenants: number; seed: number; serveRegions?: string; incident?: string }) => {
    const config = loadConfig();
    const logger = createLogger(config.LOG_LEVEL);
    if (options.incident !== undefined) {
      await triggerIncident(options.incident, config);
      return;
    }
    const url = requireDatabaseUrl(config);
    const lifecycle = new Lifecycle(logger);
    await lifecycle.start(async () => {
      const { startDemoTraffic } = await demoTraffic();
      const pool = createDemoPool(url);
      lifecycle.onStop('demo pool', () => pool.end());
      if (options.serveRegions) {
        const regions = await (await demoRegions()).startDemoRegions(logger, options.serveRegions);
        lifecycle.onStop('demo regions', regions.stop);
      }
      const demo = startDemoTraffic(
        pool,
        { requestsPerSecond: options.rps, tenants: options.tenants, seed: options.seed },
        logger
      );
      lifecycle.onStop('demo traffic', demo.stop);
    });
  });

/**
 * `demo --incident NAME`: records the incident (or, for tenant_limits, writes the usage) and prints what
 * was done as JSON. An unknown name exits 2 with the list, before any database is touched.
 */
async function triggerIncident(name: string, config: Config): Promise<void> {
  if (!isDemoIncidentName(name)) {
    console.error(`controlroom: unknown incident '${name}'. Known incidents:\n${demoIncidentList()}`);
    process.exit(2);
  }
  const { triggerDemoIncident } = await import('../db/demo/incidents.ts');
  const url = config.DATABASE_URL ?? (await import('../db/embedded.ts')).embeddedPostgresUrl(config.EMBEDDED_PG_PORT);
  const pool = createPool(url, { max: 1, ...poolTimeouts(config), applicationName: 'controlroom-demo-incident' });
  try {
    const result = await triggerDemoIncident(pool, name, `cli:${os.userInfo().username}`);
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await pool.end();
  }
}

/**
 * Runs a failover exercise (drill or game day) on its own small pool against DATABASE_URL, prints its
 * result, and fails the command when the exercise did not pass, so scripts and CI see it.
 */
async function runExercise(
  name: string,
  exercise: (pool: Pool, config: Config, logger: Logger) => Promise<{ outcome: string }>
) {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL);
  const pool = createPool(requireDatabaseUrl(config), {
    max: 4,
    ...poolTimeouts(config),
    applicationName: `controlroom-${name}`,
  });
  try {
    const result = await exercise(pool, config, logger);
    console.log(JSON.stringify(result, null, 2));
    if (result.outcome !== 'passed') process.exitCode = 1;
  } finally {
    await pool.end();
  }
}

program
  .command('drill')
  .description('planned failover drill against local test regions; records RTO/RPO as evidence')
  .action(() =>
    runExercise('drill', async (pool, config, logger) =>
      (await import('../control/failover/index.ts')).runDrill({ pool, config, logger })
    )
  );

program
  .command('gameday')
  .description(
    'scripted game day against local simulated regions (primary-db-loss | upstream-degraded); recorded like a drill'
  )
  .argument('<scenario>', `one of: ${GAMEDAY_SCENARIOS.join(', ')}`, (value: string) => {
    if (!(GAMEDAY_SCENARIOS as readonly string[]).includes(value))
      throw new InvalidArgumentError(`expected one of: ${GAMEDAY_SCENARIOS.join(', ')}`);
    return value as GameDayScenario;
  })
  .action((scenario: GameDayScenario) =>
    runExercise('gameday', async (pool, config, logger) =>
      (await import('../control/failover/gameday.ts')).runGameDay({ pool, config, logger, scenario })
    )
  );

registerEvidenceCommands(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(`controlroom: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
