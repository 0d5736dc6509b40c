import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from '../core/logger.ts';
import { sampleAtMostEvery } from './exposition.ts';

/** How old a scrape's process and Node.js metrics may be (they are sampled at the scrape, at most this often). */
export const DEFAULT_METRICS_MAX_AGE_MS = 1_000;

export interface Collector {
  readonly name: string;
  /** How often the background refresh runs. */
  readonly intervalMs: number;
  /** Reads the database and replaces the collector's metric snapshots. Never called from a scrape. */
  refresh(): Promise<void>;
}

/**
 * Runs every collector on its own background timer and keeps the self-metrics. A scrape only formats the
 * latest snapshots, so /metrics costs the same whatever the size of the TMS's tables, and one collector
 * failing (its snapshot goes stale, its error counter rises) never breaks the others or the endpoint.
 */
export class CollectorRunner {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly running = new Map<string, Promise<void>>();
  private stopped = true;
  private readonly duration: Gauge<'collector'>;
  private readonly errors: Counter<'collector'>;
  private readonly lastSuccess: Gauge<'collector'>;
  /** When each collector's snapshot was last replaced (epoch ms), for the staleness gauge. */
  private readonly refreshedAt = new Map<string, number>();

  constructor(
    readonly registry: Registry,
    private readonly collectors: readonly Collector[],
    private readonly logger: Logger
  ) {
    this.duration = new Gauge({
      name: 'controlroom_exporter_collect_duration_seconds',
      help: 'Wall time of the last background refresh of each collector.',
      labelNames: ['collector'],
      registers: [registry],
    });
    this.errors = new Counter({
      name: 'controlroom_exporter_collect_errors_total',
      help: 'Background refreshes that failed, by collector.',
      labelNames: ['collector'],
      registers: [registry],
    });
    this.lastSuccess = new Gauge({
      name: 'controlroom_exporter_last_success_timestamp_seconds',
      help: 'Unix time of the last successful refresh of each collector.',
      labelNames: ['collector'],
      registers: [registry],
    });
    const refreshedAt = this.refreshedAt;
    new Gauge({
      name: 'controlroom_exporter_snapshot_age_seconds',
      help: 'Age of the snapshot each collector serves (time since its last successful refresh), at the scrape; absent before the first.',
      labelNames: ['collector'],
      registers: [registry],
      // Computed at the scrape from a timestamp: no SQL, and a stuck refresh shows as a growing age.
      collect() {
        const now = Date.now();
        for (const [collector, at] of refreshedAt) this.set({ collector }, (now - at) / 1000);
      },
    });
    for (const c of collectors) {
      // Present from the first scrape, so "no errors yet" reads 0 rather than absent.
      this.errors.inc({ collector: c.name }, 0);
    }
    // prom-client's process and Node.js metrics, sampled at a scrape at most once a second (each sample
    // reads /proc and formats ~300 lines: see sampleAtMostEvery). nodejs_eventloop_lag_seconds stays: its
    // collect() only schedules a setImmediate (a scrape never waits for it), and it is the collect() that
    // also sets nodejs_eventloop_lag_{min,max,mean,stddev,p50,p90,p99}_seconds, which stay 0 without it.
    const own = new Set(registry.getMetricsAsArray().map((m) => m.name));
    collectDefaultMetrics({ register: registry });
    const defaults = registry.getMetricsAsArray().filter((m) => !own.has(m.name));
    sampleAtMostEvery(
      registry,
      defaults.map((m) => m.name),
      DEFAULT_METRICS_MAX_AGE_MS
    );
  }

  /**
   * Refreshes every collector at once (the first scrape has every series), then each on its own interval,
   * the collectors sharing an interval spread evenly over it: a scrape meets at most one refresh's work on
   * the event loop and the pool, instead of all of them every interval at the same instant.
   */
  start(): void {
    this.stopped = false;
    const byInterval = new Map<number, Collector[]>();
    for (const c of this.collectors) byInterval.set(c.intervalMs, [...(byInterval.get(c.intervalMs) ?? []), c]);
    for (const [intervalMs, group] of byInterval) {
      group.forEach((collector, i) => this.schedule(collector, 0, Math.round((intervalMs * i) / group.length)));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await Promise.allSettled(this.running.values());
  }

  /** The collectors' names, in the order they were given. */
  get collectorNames(): string[] {
    return this.collectors.map((c) => c.name);
  }

  /** Refreshes every collector once, now; resolves when all have finished (tests and benchmarks use it). */
  async refreshAll(): Promise<void> {
    await Promise.all(this.collectors.map((c) => this.runOnce(c)));
  }

  async refreshOne(name: string): Promise<void> {
    const collector = this.collectors.find((c) => c.name === name);
    if (!collector) throw new Error(`no collector named ${name}`);
    await this.runOnce(collector);
  }

  /** Runs the collector after `delayMs`, then every intervalMs; `phaseMs` delays the second run only (its slot). */
  private schedule(collector: Collector, delayMs: number, phaseMs = 0): void {
    if (this.stopped) return;
    const timer = setTimeout(async () => {
      await this.runOnce(collector);
      this.schedule(collector, collector.intervalMs + phaseMs);
    }, delayMs);
    timer.unref();
    this.timers.set(collector.name, timer);
  }

  private runOnce(collector: Collector): Promise<void> {
    const inFlight = this.running.get(collector.name);
    if (inFlight) return inFlight;
    const run = this.measure(collector).finally(() => this.running.delete(collector.name));
    this.running.set(collector.name, run);
    return run;
  }

  private async measure(collector: Collector): Promise<void> {
    const labels = { collector: collector.name };
    const started = process.hrtime.bigint();
    try {
      await collector.refresh();
      const now = Date.now();
      this.refreshedAt.set(collector.name, now);
      this.lastSuccess.set(labels, now / 1000);
    } catch (error) {
      this.errors.inc(labels);
      this.logger.warn({ err: error, collector: collector.name }, 'collector refresh failed');
    } finally {
      this.duration.set(labels, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }
}
