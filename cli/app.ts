import http from 'node:http';
import express, { type Express, type Router } from 'express';
import type { Registry } from 'prom-client';
import { installAccessControl, trustGrafanaHop, type AccessControl } from '../core/access.ts';
import type { Pool } from '../core/db.ts';
import { withDirectRoutes, type DirectRoute } from '../core/direct-routes.ts';
import { errorHandler, notFound } from '../core/http.ts';
import { sendMetrics } from '../exporter/exposition.ts';
import type { Logger } from '../core/logger.ts';

export interface AppParts {
  pool: Pool;
  registry: Registry;
  logger: Logger;
  /** Mounted under /webhooks (alert receiver, and later GitHub and Stripe). */
  webhooks?: Router[];
  /** Mounted under /api. */
  api?: Router[];
  /** The control API's access check (core/access.ts); null or absent: the control API answers 503. */
  access?: AccessControl | null;
  /** CONTROLROOM_TRUSTED_PROXY: Grafana's address, the hop whose X-Forwarded-For is believed. */
  trustedProxy?: string;
  /** CONTROLROOM_TRUSTED_BALANCER: the balancer Grafana calls through (HA), or empty. */
  trustedBalancer?: string;
}

/** Where the features' webhook routers (and their direct webhooks) are mounted. */
const WEBHOOKS_PATH = '/webhooks';

/** The one HTTP surface of Control Room: /metrics, /healthz, /api/* and /webhooks/*. */
export function buildApp({
  pool,
  registry,
  logger,
  webhooks = [],
  api: apiRouters = [],
  access = null,
  trustedProxy = 'loopback',
  trustedBalancer = '',
}: AppParts): Express {
  const app = express();
  app.disable('x-powered-by');
  // req.ip (recorded in the audit log) is the browser's address Grafana forwarded, not Grafana's own.
  app.set('trust proxy', trustGrafanaHop(trustedProxy, trustedBalancer));
  installAccessControl(app, access);

  app.get('/metrics', async (_req, res, next) => {
    try {
      // Serves the snapshots the background refresh left, each encoded once when it was replaced; no SQL runs here.
      await sendMetrics(registry, res);
    } catch (error) {
      next(error);
    }
  });

  app.get('/healthz', async (_req, res) => {
    try {
      await pool.query('SELECT 1');
      res.json({ status: 'ok', database: 'ok' });
    } catch (error) {
      res.status(503).json({ status: 'degraded', database: (error as Error).message });
    }
  });

  const api = express.Router();
  api.get('/', (_req, res) =>
    res.json({ service: 'controlroom', endpoints: ['/metrics', '/healthz', '/api', '/webhooks'] })
  );
  for (const router of apiRouters) api.use(router);
  app.use('/api', api);
  app.use('/api', notFound);
  for (const router of webhooks) app.use(WEBHOOKS_PATH, router);
  app.use(WEBHOOKS_PATH, notFound);
  app.use(notFound);
  app.use(errorHandler(logger));
  return app;
}

/**
 * The HTTP server of `app`, with the features' direct webhooks (their exact paths under /webhooks) answered
 * ahead of it (core/direct-routes.ts); not listening yet.
 */
export function createHttpServer(app: Express, directWebhooks: readonly DirectRoute[], logger: Logger): http.Server {
  const direct = directWebhooks.map((route) => ({ ...route, path: `${WEBHOOKS_PATH}${route.path}` }));
  return http.createServer(withDirectRoutes(direct, app, logger));
}
