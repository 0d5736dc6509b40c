import http from 'node:http';
import type { Server } from 'node:http';
import { Registry } from 'prom-client';
import { buildApp } from '../cli/app.ts';
import { createAccessControl } from '../core/access.ts';
import { loadConfig, type Config } from '../cli/config.ts';
import { createLogger } from '../core/logger.ts';
import { createExporterMetrics } from '../exporter/metrics.ts';
import { parseMetrics } from './prom-text.ts';
import { createTestDatabase, type TestDatabase } from './postgres.ts';
import { RegionsCollector } from '../exporter/collectors/regions.ts';
import { startFailover, type FailoverService } from '../control/failover/index.ts';
import type { FailoverSettings, RegionSpec } from '../control/failover/settings.ts';
import { SimulatedJobQueue } from '../control/failover/sim-jobs.ts';

export const API_SECRET = 'controlroom-api-secret-0123456789';
export const silent = createLogger('silent');

/**
 * A local region that answers its health checks as told: 'ok' (200), 'fail' (503) or 'hang' (no answer).
 * Its background jobs (`jobs`) answer /jobs/pause, /jobs/resume and /jobs/queue: set `jobs.queued` for
 * work to drain, `jobs.mode = 'stuck'` for a region that stops draining, `jobs.pauseAnswers = 503` for one
 * that cannot pause; `mode = 'fail'` during a cutover is a region failing mid-shift.
 */
export class FakeRegion {
  mode: 'ok' | 'fail' | 'hang' = 'ok';
  /** Added to every health answer (read latency), in ms. */
  delayMs = 0;
  readonly jobs = new SimulatedJobQueue();
  /** What GET /lag answers with (a JSON body or a plain string). */
  lagBody: string = '{"lag_seconds": 0}';
  healthCalls = 0;
  private constructor(
    private readonly server: Server,
    readonly url: string
  ) {}

  static async start(): Promise<FakeRegion> {
    let region: FakeRegion | undefined;
    const server = http.createServer((req, res) => {
      req.resume();
      const r = region!;
      if (r.jobs.handle(req, res)) return;
      if (req.url === '/lag') {
        res.writeHead(200, { 'content-type': r.lagBody.trim().startsWith('{') ? 'application/json' : 'text/plain' });
        res.end(r.lagBody);
        return;
      }
      r.healthCalls += 1;
      if (r.mode === 'hang') return; // the checker's timeout ends it
      const answer = () => {
        res.writeHead(r.mode === 'ok' ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: r.mode }));
      };
      if (r.delayMs > 0) setTimeout(answer, r.delayMs);
      else answer();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (typeof address !== 'object' || !address) throw new Error('no address');
    region = new FakeRegion(server, `http://127.0.0.1:${address.port}`);
    return region;
  }

  spec(name: string, role: 'primary' | 'secondary', withLag = false, withJobs = true): RegionSpec {
    return {
      name,
      role,
      base_url: this.url,
      health_url: `${this.url}/healthz`,
      ...(withLag ? { replication_lag_url: `${this.url}/lag` } : {}),
      ...(withJobs
        ? {
            pause_url: `${this.url}/jobs/pause`,
            resume_url: `${this.url}/jobs/resume`,
            queue_depth_url: `${this.url}/jobs/queue`,
          }
        : {}),
    };
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }
}

export const EAST = 'us-east-1';
export const WEST = 'us-west-2';

export function testConfig(
  east: FakeRegion,
  west: FakeRegion,
  extra: Record<string, string> = {},
  withLag = false,
  withJobs = true
): Config {
  return loadConfig({
    CONTROLROOM_AUTH: 'shared-secret',
    CONTROLROOM_API_SECRET: API_SECRET,
    CONTROLROOM_INSTANCE_ID: 'test-a',
    FAILOVER_REGIONS: JSON.stringify([
      east.spec(EAST, 'primary', withLag, withJobs),
      west.spec(WEST, 'secondary', withLag, withJobs),
    ]),
    FAILOVER_CHECK_TIMEOUT_MS: '500',
    FAILOVER_UNHEALTHY_AFTER: '3',
    FAILOVER_HEALTHY_AFTER: '2',
    FAILOVER_LEASE_SECONDS: '2',
    ...extra,
  });
}

/** Settings fast enough for tests. */
export const FAST: Partial<FailoverSettings> = {
  checkIntervalMs: 100,
  stepMs: 400,
  drainMinMs: 300,
  drainMaxMs: 2_000,
  pollMs: 30,
  drainJobsTimeoutMs: 3_000,
};

export interface Harness {
  db: TestDatabase;
  east: FakeRegion;
  west: FakeRegion;
  service: FailoverService;
  base: string;
  metrics(): Promise<Map<string, number>>;
  /** Stops the engine and the server (the database stays), then starts both again. */
  restart(settings?: Partial<FailoverSettings>, options?: { release?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

export async function startHarness(
  options: {
    settings?: Partial<FailoverSettings>;
    config?: Record<string, string>;
    withLag?: boolean;
    withJobs?: boolean;
  } = {}
): Promise<Harness> {
  const db = await createTestDatabase();
  const east = await FakeRegion.start();
  const west = await FakeRegion.start();
  const config = testConfig(east, west, options.config, options.withLag, options.withJobs ?? true);
  const registry = new Registry();
  const collector = new RegionsCollector({ pool: db.pool, metrics: createExporterMetrics(registry), settings: config });

  const boot = async (settings: Partial<FailoverSettings>) => {
    const service = await startFailover({ pool: db.pool, config, logger: silent, settings: { ...FAST, ...settings } });
    const app = buildApp({
      pool: db.pool,
      registry,
      logger: silent,
      api: [service.apiRouter],
      access: createAccessControl(config),
    });
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    return { service, server, base: `http://127.0.0.1:${port}` };
  };
  let running = await boot(options.settings ?? {});
  const closeServer = (server: Server) =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });

  const harness: Harness = {
    db,
    east,
    west,
    service: running.service,
    base: running.base,
    async metrics() {
      await collector.refresh();
      return parseMetrics(await registry.metrics());
    },
    async restart(settings = {}, opts = {}) {
      await running.service.engine.stop(opts);
      await closeServer(running.server);
      running = await boot({ ...(options.settings ?? {}), ...settings });
      harness.service = running.service;
      harness.base = running.base;
    },
    async stop() {
      await running.service.stop();
      await closeServer(running.server);
      await Promise.all([east.close(), west.close()]);
      await db.drop();
    },
  };
  return harness;
}

export const asUser = (role: string, login = `${role.toLowerCase()}.user`): Record<string, string> => ({
  'content-type': 'application/json',
  'user-agent': 'failover-test',
  'x-controlroom-secret': API_SECRET,
  'x-grafana-context': JSON.stringify({ UserID: 7, OrgID: 1, Login: login, OrgRole: role, IsGrafanaAdmin: false }),
});

export async function call(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown
) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as any };
}

export async function waitUntil<T>(
  probe: () => Promise<T | null | undefined | false>,
  timeoutMs = 10_000,
  what = 'condition'
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
