import type { Server } from 'node:http';
import type { Config } from '../core/config.ts';
import { createPool, type Pool } from '../core/db.ts';
import type { Logger } from '../core/logger.ts';
import { createExporter, type Exporter } from '../exporter/exporter.ts';
import { buildApp } from './app.ts';

export interface RunningServices {
  pool: Pool;
  exporter: Exporter;
  server: Server;
  port: number;
  stop(): Promise<void>;
}

/** Starts the exporter's background refresh and the HTTP server against an already-migrated database. */
export async function startServices(databaseUrl: string, config: Config, logger: Logger): Promise<RunningServices> {
  const pool = createPool(databaseUrl, {
    max: config.PG_POOL_MAX,
    statementTimeoutMs: config.PG_STATEMENT_TIMEOUT_MS,
    applicationName: 'controlroom',
  });
  const exporter = createExporter(pool, config, logger);
  exporter.runner.start();
  const app = buildApp({ pool, registry: exporter.registry, logger });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.PORT, config.HOST, () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  logger.info({ port, host: config.HOST }, 'control room listening');
  return {
    pool,
    exporter,
    server,
    port,
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await exporter.runner.stop();
      await pool.end();
    },
  };
}
