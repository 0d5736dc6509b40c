import http from 'node:http';
import { SimulatedJobQueue } from '../../control/failover/sim-jobs.ts';
import type { Logger } from '../../core/logger.ts';

export interface DemoRegion {
  name: string;
  port: number;
}

/** The regions `controlroom start` serves when FAILOVER_REGIONS is not set (control/failover's defaults). */
export const DEMO_REGIONS: readonly DemoRegion[] = [
  { name: 'us-east-1', port: 18481 },
  { name: 'us-west-2', port: 18482 },
];

/**
 * Two tiny local stand-ins for the TMS's regions, so the demo's failover page and region metrics show
 * healthy regions with a little replication lag instead of two unreachable placeholders. Each also has
 * background jobs (control/failover/sim-jobs.ts: /jobs/pause, /jobs/resume, /jobs/queue) that keep a
 * small queue busy while running and drain once a cutover pauses them. A port already
 * in use is reported and skipped (that region then reads as down, which is also a true picture). They
 * listen on loopback, except in the Docker stack, where the service reaches them in the demo container.
 */
export async function startDemoRegions(logger?: Logger, host = '127.0.0.1'): Promise<{ stop(): Promise<void> }> {
  const servers: http.Server[] = [];
  const timers: NodeJS.Timeout[] = [];
  for (const region of DEMO_REGIONS) {
    const jobs = new SimulatedJobQueue({ queued: 2, running: 1 });
    // Background work comes and goes while the jobs run (never while paused, so a cutover can drain them).
    const timer = setInterval(() => {
      if (jobs.paused) return;
      jobs.queued = Math.floor(Math.random() * 5);
      jobs.running = Math.floor(Math.random() * 3);
    }, 2_000);
    timer.unref();
    timers.push(timer);
    const server = http.createServer((req, res) => {
      if (jobs.handle(req, res)) return;
      if (req.url === '/healthz') {
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ status: 'ok', region: region.name }));
      } else if (req.url === '/replication/lag') {
        // A secondary trails its primary by a fraction of a second, now and then more.
        const lag = region.name === 'us-west-2' ? 0.2 + (Date.now() % 7_000) / 10_000 : 0;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ lag_seconds: lag }));
      } else {
        res.writeHead(404).end();
      }
    });
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', (err) => {
        logger?.warn(
          { err, region: region.name, port: region.port },
          'demo region could not listen; it will read as down'
        );
        resolve(false);
      });
      server.listen(region.port, host, () => resolve(true));
    });
    if (ok) servers.push(server);
  }
  return {
    stop: async () => {
      for (const t of timers) clearInterval(t);
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}
