/**
 * Failover drill: a planned failover between two local test regions, through the same request and
 * engine code as POST /api/regions/failover, while a client keeps writing. It measures
 *
 * - RTO: from the cutover request until the target region is active at 100%, writes are unfrozen and the
 *   target has acknowledged a write;
 * - RPO: writes the old primary acknowledged that the new primary does not have once it took over, as a
 *   count and as seconds of data (newest lost write minus the newest write that made it across),
 *
 * and records them in controlroom.failover_drills (and the audit log) as evidence. The drill runs in its
 * own scope ('drill-<id>'), so live routing is never touched.
 */
import type { Routing } from '@controlroom/contract';
import http from 'node:http';
import { audit } from '../../core/audit.ts';
import type { Pool } from '../../core/db.ts';
import type { Logger } from '../../core/logger.ts';
import { FailoverEngine } from './engine.ts';
import { judgeObjectives } from './integrity.ts';
import { requestFailover, waitForEvent } from './requests.ts';
import { loadRouting } from './routes.ts';
import { failoverSettings, type FailoverConfig, type FailoverSettings, type RegionSpec } from './settings.ts';
import { SimulatedJobQueue } from './sim-jobs.ts';
import { loadRegions, syncRegions } from './store.ts';

export interface DrillOptions {
  /** Time between the steps of the cutover (default 400 ms). */
  stepMs?: number;
  steps?: number[];
  /** How far the secondary's replication trails the primary (default 150 ms). */
  replicationLagMs?: number;
  /** Pause between two writes of the client (default 5 ms). */
  writeIntervalMs?: number;
  /**
   * Hold the write freeze until the target's replication has caught up (default true, as a planned
   * failover does). false shows what skipping that costs: the writes still in flight are lost.
   */
  waitForReplication?: boolean;
  /** Writes before the cutover starts (default 500 ms). */
  warmupMs?: number;
  /** Writes after the cutover, to show the new primary takes them (default 300 ms). */
  settleMs?: number;
  actor?: string;
  reason?: string;
  /** The whole drill gives up after this (default 30 s). */
  timeoutMs?: number;
}

export interface DrillResult {
  id: string;
  kind: 'drill' | 'gameday';
  scenario: string | null;
  scope: string;
  event_id: string | null;
  /** passed: the objectives were met (and, for a planned drill, no acknowledged write was lost). */
  outcome: 'passed' | 'failed';
  rto_target_seconds: number;
  rpo_target_seconds: number;
  rto_met: boolean | null;
  rpo_met: boolean | null;
  from: string;
  to: string;
  steps: number[];
  started_at: string;
  finished_at: string;
  rto_seconds: number | null;
  rpo_seconds: number | null;
  writes_acknowledged: number;
  writes_lost: number;
  /** How long writes were frozen for the move of the write role. */
  write_freeze_seconds: number | null;
  /** From the last write the old primary acknowledged to the first the new one did. */
  write_unavailable_seconds: number | null;
  details: Record<string, unknown>;
}

interface StoredWrite {
  id: string;
  seq: number;
  at: number;
}

/**
 * A stand-in region: health, sequenced writes, asynchronous replication from an upstream, and background
 * jobs (pause / resume / queue depth, sim-jobs.ts). Game days break it: `lose()` is the loss of its
 * database (health checks and writes fail), `healthDelayMs` a degraded upstream that slows its answers.
 */
export class SimRegion {
  readonly writes = new Map<string, StoredWrite>();
  /** A few jobs in flight, drained once the cutover pauses them. */
  readonly jobs = new SimulatedJobQueue({ queued: 3, running: 1 });
  lostAt: number | null = null;
  healthDelayMs = 0;
  healthStatus = 'ok';
  /** Writes accepted here as primary: the replication stream a replica follows. */
  private readonly stream: StoredWrite[] = [];
  private appliedFromUpstream = 0;
  private seq = 0;
  upstream: SimRegion | null = null;
  promotedAt: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private server: http.Server | null = null;
  url = '';

  constructor(
    readonly name: string,
    private primary: boolean,
    private readonly lagMs: number
  ) {}

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (typeof address !== 'object' || !address) throw new Error('drill region has no address');
    this.url = `http://127.0.0.1:${address.port}`;
    this.timer = setInterval(() => this.replicate(), 5);
  }

  spec(role: 'primary' | 'secondary'): RegionSpec {
    const u = this.url;
    return {
      name: this.name,
      role,
      base_url: u,
      health_url: `${u}/healthz`,
      replication_lag_url: `${u}/replication/lag`,
      pause_url: `${u}/jobs/pause`,
      resume_url: `${u}/jobs/resume`,
      queue_depth_url: `${u}/jobs/queue`,
    };
  }

  /** The region's database is gone: health checks and writes fail from now on. */
  lose(): void {
    this.lostAt = Date.now();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** A replica applies the upstream's writes once they are `lagMs` old; a promoted one stops. */
  private replicate(): void {
    if (this.primary || !this.upstream) return;
    // A lost upstream ships nothing more: what had not reached the replica by then is gone.
    const lostAt = this.upstream.lostAt;
    const cutoff = Math.min(Date.now(), lostAt ?? Infinity) - this.lagMs;
    const source = this.upstream.stream;
    while (this.appliedFromUpstream < source.length && source[this.appliedFromUpstream]!.at <= cutoff) {
      const w = source[this.appliedFromUpstream]!;
      this.writes.set(w.id, w);
      this.seq = Math.max(this.seq, w.seq);
      this.appliedFromUpstream += 1;
    }
  }

  lagSeconds(): number {
    if (this.primary || !this.upstream) return 0;
    this.replicate();
    const next = this.upstream.stream[this.appliedFromUpstream];
    return next ? (Date.now() - next.at) / 1000 : 0;
  }

  /** Writes go where the router sends them; the first write a replica gets promotes it. */
  private write(id: string): StoredWrite {
    if (!this.primary) {
      this.primary = true;
      this.promotedAt = Date.now();
    }
    this.seq += 1;
    const w = { id, seq: this.seq, at: Date.now() };
    this.writes.set(id, w);
    this.stream.push(w);
    return w;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://drill');
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (this.jobs.handle(req, res)) return;
    req.resume();
    if (req.method === 'GET' && url.pathname === '/healthz') {
      if (this.lostAt !== null) return send(503, { region: this.name, error: 'database unreachable' });
      const answer = () => send(200, { region: this.name, primary: this.primary, status: this.healthStatus });
      if (this.healthDelayMs > 0) setTimeout(answer, this.healthDelayMs);
      else answer();
      return;
    }
    if (req.method === 'GET' && url.pathname === '/replication/lag')
      return send(200, { lag_seconds: this.lagSeconds() });
    if (req.method === 'POST' && url.pathname === '/writes') {
      if (this.lostAt !== null) return send(503, { error: 'database unreachable' });
      const id = url.searchParams.get('id');
      if (!id) return send(400, { error: 'id required' });
      const w = this.write(id);
      return send(200, { region: this.name, seq: w.seq });
    }
    send(404, { error: 'not found' });
  }
}

interface Ack {
  id: string;
  region: string;
  seq: number;
  at: number;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function until<T>(
  probe: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  timeoutMs: number,
  what: string
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() >= deadline) throw new Error(`drill: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** The client side of the drill: follows /regions/routing like the TMS router and writes continuously. */
export class DrillClient {
  routing: Routing | null = null;
  readonly acks: Ack[] = [];
  frozenWaits = 0;
  errors = 0;
  /** Writes refused or failed, with when (game days measure the outage from them). */
  readonly failures: Array<{ region: string; at: number }> = [];
  private stopped = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly pool: Pool,
    private readonly scope: string,
    private readonly writeIntervalMs: number
  ) {}

  start(): void {
    this.loops = [this.followRouting(), this.writeLoop()];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled(this.loops);
  }

  private async followRouting(): Promise<void> {
    while (!this.stopped) {
      try {
        this.routing = await loadRouting(this.pool, this.scope);
      } catch {
        // keep the last routing
      }
      await sleep(20);
    }
  }

  private async writeLoop(): Promise<void> {
    let n = 0;
    while (!this.stopped) {
      const routing = this.routing;
      const region = routing?.regions.find((r) => r.name === routing.active);
      if (!routing || !region) {
        await sleep(this.writeIntervalMs);
        continue;
      }
      if (routing.write_frozen) {
        this.frozenWaits += 1;
        await sleep(this.writeIntervalMs);
        continue;
      }
      n += 1;
      const id = `w${n}`;
      try {
        const res = await fetch(`${region.base_url}/writes?id=${id}`, {
          method: 'POST',
          signal: AbortSignal.timeout(1_000),
        });
        const body = (await res.json()) as { seq?: number };
        if (res.ok && typeof body.seq === 'number')
          this.acks.push({ id, region: region.name, seq: body.seq, at: Date.now() });
        else {
          this.errors += 1;
          this.failures.push({ region: region.name, at: Date.now() });
        }
      } catch {
        this.errors += 1;
        this.failures.push({ region: region.name, at: Date.now() });
      }
      await sleep(this.writeIntervalMs);
    }
  }
}

export interface RunDrillOptions {
  pool: Pool;
  config: FailoverConfig;
  logger: Logger;
  options?: DrillOptions;
}

/**
 * Records the start of a drill or game day in controlroom.failover_drills, with the RTO / RPO targets it
 * will be judged against, and returns its id and its own failover scope (`drill-<id>` / `gameday-<id>`),
 * so an exercise never touches the live scope's regions, lease or cutovers.
 */
export async function recordExercise(
  pool: Pool,
  config: FailoverConfig,
  exercise: { kind: 'drill' | 'gameday'; scenario?: string; actor: string; startedAt: Date; options: object }
): Promise<{ id: string; scope: string }> {
  const { rows } = await pool.query<{ id: string }>(
    `WITH n AS (SELECT nextval(pg_get_serial_sequence('controlroom.failover_drills', 'id')) AS id)
     INSERT INTO controlroom.failover_drills (id, scope, actor, started_at, details, kind, scenario, rto_target_seconds, rpo_target_seconds)
     SELECT id, $1 || '-' || id, $2, $3, $4, $1, $5, $6, $7 FROM n RETURNING id::text AS id`,
    [
      exercise.kind,
      exercise.actor,
      exercise.startedAt,
      JSON.stringify({ options: exercise.options }),
      exercise.scenario ?? null,
      config.FAILOVER_RTO_TARGET_SECONDS,
      config.FAILOVER_RPO_TARGET_SECONDS,
    ]
  );
  const id = rows[0]!.id;
  return { id, scope: `${exercise.kind}-${id}` };
}

/** What a drill or game day runs against, ready: both regions healthy, the client writing, warmed up. */
export interface SimulatedRegions {
  primary: SimRegion;
  secondary: SimRegion;
  engine: FailoverEngine;
  client: DrillClient;
  settings: FailoverSettings;
  /** Milliseconds left before the exercise's timeout (at least 1). */
  left: () => number;
}

/**
 * Runs `body` against two simulated regions (a primary and its replica) of the exercise's own scope,
 * under a failover engine of that scope, with a client writing every `writeIntervalMs` to whichever is
 * primary, once both are healthy and the client has warmed up. However `body` ends, the client, engine
 * and regions are stopped and the scope's regions removed (its evidence stays).
 */
export async function withSimulatedRegions<T>(
  spec: {
    pool: Pool;
    config: FailoverConfig;
    logger: Logger;
    log: Logger;
    scope: string;
    /** Region names are `<prefix>-primary` and `<prefix>-secondary`. */
    prefix: string;
    replicationLagMs: number;
    writeIntervalMs: number;
    warmupMs: number;
    timeoutMs: number;
    /** The exercise's own engine settings (automatic or not, step and drain times). */
    settings: Partial<FailoverSettings>;
  },
  body: (regions: SimulatedRegions) => Promise<T>
): Promise<T> {
  const { pool, scope, log } = spec;
  const primary = new SimRegion(`${spec.prefix}-primary`, true, spec.replicationLagMs);
  const secondary = new SimRegion(`${spec.prefix}-secondary`, false, spec.replicationLagMs);
  secondary.upstream = primary;
  const settings = failoverSettings(spec.config, {
    scope,
    holder: `${spec.config.CONTROLROOM_INSTANCE_ID}/${scope}`,
    checkIntervalMs: 100,
    checkTimeoutMs: 1_000,
    leaseMs: 5_000,
    pollMs: 20,
    ...spec.settings,
  });
  let engine: FailoverEngine | null = null;
  const client = new DrillClient(pool, scope, spec.writeIntervalMs);
  try {
    await primary.start();
    await secondary.start();
    await syncRegions(pool, scope, [primary.spec('primary'), secondary.spec('secondary')], log);
    const started = new FailoverEngine(pool, settings, spec.logger);
    engine = started;
    await started.start();
    const deadline = Date.now() + spec.timeoutMs;
    const left = () => Math.max(1, deadline - Date.now());
    await until(
      async () => started.isLeader && (await loadRegions(pool, scope)).every((r) => r.healthy),
      left(),
      'both regions healthy'
    );
    client.start();
    await until(() => client.acks.length > 0, left(), 'the first write');
    await sleep(spec.warmupMs);
    return await body({ primary, secondary, engine: started, client, settings, left });
  } finally {
    await client.stop();
    await engine?.stop();
    await Promise.all([primary.close(), secondary.close()]);
    await removeSimulatedScope(pool, scope, log);
  }
}

/**
 * An exercise that failed to run (a timeout, an error) is still recorded and audited as failed, with
 * the error, so the evidence shows every attempt. Best effort: the original error is what the caller sees.
 */
export async function recordFailedExercise(
  pool: Pool,
  failed: { id: string; actor: string; action: string; payload: Record<string, unknown>; eventId?: string | null },
  error: unknown
): Promise<void> {
  const message = error instanceof Error ? error.message : String(error);
  await pool
    .query(
      `UPDATE controlroom.failover_drills SET finished_at = now(), outcome = 'failed', event_id = coalesce($2, event_id),
              details = details || jsonb_build_object('error', $3::text) WHERE id = $1`,
      [failed.id, failed.eventId ?? null, message]
    )
    .catch(() => undefined);
  await audit(pool, {
    actor: failed.actor,
    action: failed.action,
    target: `failover_drills/${failed.id}`,
    payload: { ...failed.payload, outcome: 'failed', error: message },
  }).catch(() => undefined);
}

export async function runDrill({ pool, config, logger, options = {} }: RunDrillOptions): Promise<DrillResult> {
  const o = {
    stepMs: options.stepMs ?? 400,
    steps: options.steps ?? [10, 50, 100],
    replicationLagMs: options.replicationLagMs ?? 150,
    writeIntervalMs: options.writeIntervalMs ?? 5,
    waitForReplication: options.waitForReplication ?? true,
    warmupMs: options.warmupMs ?? 500,
    settleMs: options.settleMs ?? 300,
    actor: options.actor ?? 'controlroom:drill',
    reason: options.reason ?? 'planned failover drill against local test regions',
    timeoutMs: options.timeoutMs ?? 30_000,
  };
  const log = logger.child({ component: 'failover-drill' });
  const startedAt = new Date();
  const { id, scope } = await recordExercise(pool, config, { kind: 'drill', actor: o.actor, startedAt, options: o });
  log.info({ drill: id, scope }, 'failover drill starting');

  let eventId: string | null = null;
  try {
    return await withSimulatedRegions(
      {
        pool,
        config,
        logger,
        log,
        scope,
        prefix: 'drill',
        replicationLagMs: o.replicationLagMs,
        writeIntervalMs: o.writeIntervalMs,
        warmupMs: o.warmupMs,
        timeoutMs: o.timeoutMs,
        settings: {
          auto: false,
          stepMs: o.stepMs,
          drainMinMs: 150,
          drainMaxMs: 5_000,
          drainMaxLagSeconds: o.waitForReplication ? 0 : Number.POSITIVE_INFINITY,
        },
      },
      async ({ primary, secondary, engine, client, settings, left }) => {
        const t0 = Date.now();
        const { event } = await requestFailover(
          pool,
          scope,
          o.steps,
          { target: secondary.name, steps: o.steps, force: false, reason: o.reason },
          { actor: o.actor, role: 'drill' },
          'drill'
        );
        eventId = event.id;
        engine.wake();
        const finished = await waitForEvent(pool, event.id, left());
        if (finished.outcome !== 'completed')
          throw new Error(`drill: the failover ended ${finished.outcome}: ${JSON.stringify(finished.details)}`);
        const firstOnTarget = await until(
          () => client.acks.find((a) => a.region === secondary.name),
          left(),
          'the first write on the new primary'
        );
        await sleep(o.settleMs);
        await client.stop();

        const fromAcks = client.acks.filter((a) => a.region === primary.name);
        const lastOnSource = fromAcks[fromAcks.length - 1] ?? null;
        const lost = fromAcks.filter((a) => !secondary.writes.has(a.id));
        const kept = fromAcks.filter((a) => secondary.writes.has(a.id));
        const newestLost = lost.reduce((m, a) => Math.max(m, a.at), 0);
        const newestKept = kept.filter((a) => a.at <= (lost[0]?.at ?? Infinity)).reduce((m, a) => Math.max(m, a.at), 0);
        const rpoSeconds = lost.length === 0 ? 0 : (newestLost - (newestKept || lost[0]!.at)) / 1000;
        const rtoSeconds = (firstOnTarget.at - t0) / 1000;
        const drain = (finished.details.drain ?? {}) as {
          frozen_ms?: number;
          target_lag_seconds?: number | null;
          caught_up?: boolean;
        };
        const freezeSeconds = typeof drain.frozen_ms === 'number' ? drain.frozen_ms / 1000 : null;
        const unavailable = lastOnSource ? (firstOnTarget.at - lastOnSource.at) / 1000 : null;
        // Judged against the targets; a planned failover must also lose no acknowledged write at all.
        const objectives = judgeObjectives(rtoSeconds, rpoSeconds, settings);
        const failures = [
          ...(objectives.rto_met === false
            ? [`RTO ${rtoSeconds.toFixed(3)} s is over the ${settings.rtoTargetSeconds} s target`]
            : []),
          ...(objectives.rpo_met === false
            ? [`RPO ${rpoSeconds.toFixed(3)} s is over the ${settings.rpoTargetSeconds} s target`]
            : []),
          ...(lost.length > 0 ? [`${lost.length} acknowledged writes missing on the new primary`] : []),
        ];
        const outcome: DrillResult['outcome'] = failures.length === 0 ? 'passed' : 'failed';
        const details = {
          options: o,
          regions: { from: { name: primary.name, url: primary.url }, to: { name: secondary.name, url: secondary.url } },
          event_timeline: finished.details.timeline ?? null,
          drain,
          promoted_at: secondary.promotedAt ? new Date(secondary.promotedAt).toISOString() : null,
          writes_on_old_primary: fromAcks.length,
          writes_on_new_primary: client.acks.length - fromAcks.length,
          frozen_write_waits: client.frozenWaits,
          write_errors: client.errors,
          write_unavailable_seconds: unavailable,
          write_freeze_seconds: freezeSeconds,
          lost_write_ids: lost.slice(0, 50).map((a) => a.id),
          objectives,
          jobs: finished.details.jobs ?? null,
          ...(outcome === 'failed' ? { failure: failures.join('; ') } : {}),
        };
        const finishedAt = new Date();
        await pool.query(
          `UPDATE controlroom.failover_drills
          SET finished_at = $2, outcome = $3, event_id = $4, rto_seconds = $5, rpo_seconds = $6,
              writes_acknowledged = $7, writes_lost = $8, details = $9,
              rto_target_seconds = $10, rpo_target_seconds = $11, rto_met = $12, rpo_met = $13
        WHERE id = $1`,
          [
            id,
            finishedAt,
            outcome,
            event.id,
            rtoSeconds,
            rpoSeconds,
            client.acks.length,
            lost.length,
            JSON.stringify(details),
            settings.rtoTargetSeconds,
            settings.rpoTargetSeconds,
            objectives.rto_met,
            objectives.rpo_met,
          ]
        );
        const result: DrillResult = {
          id,
          kind: 'drill',
          scenario: null,
          scope,
          event_id: event.id,
          outcome,
          rto_target_seconds: settings.rtoTargetSeconds,
          rpo_target_seconds: settings.rpoTargetSeconds,
          rto_met: objectives.rto_met,
          rpo_met: objectives.rpo_met,
          from: primary.name,
          to: secondary.name,
          steps: finished.steps ?? o.steps,
          started_at: startedAt.toISOString(),
          finished_at: finishedAt.toISOString(),
          rto_seconds: rtoSeconds,
          rpo_seconds: rpoSeconds,
          writes_acknowledged: client.acks.length,
          writes_lost: lost.length,
          write_freeze_seconds: freezeSeconds,
          write_unavailable_seconds: unavailable,
          details,
        };
        await audit(pool, {
          actor: o.actor,
          action: 'failover.drill',
          target: `failover_drills/${id}`,
          payload: {
            scope,
            event_id: event.id,
            outcome,
            rto_seconds: rtoSeconds,
            rpo_seconds: rpoSeconds,
            rto_target_seconds: settings.rtoTargetSeconds,
            rpo_target_seconds: settings.rpoTargetSeconds,
            rto_met: objectives.rto_met,
            rpo_met: objectives.rpo_met,
            writes_acknowledged: result.writes_acknowledged,
            writes_lost: result.writes_lost,
            write_freeze_seconds: freezeSeconds,
            steps: result.steps,
          },
        });
        log.info(
          {
            drill: id,
            outcome,
            rto_seconds: rtoSeconds,
            rpo_seconds: rpoSeconds,
            writes: result.writes_acknowledged,
            lost: lost.length,
          },
          'failover drill finished'
        );
        return result;
      }
    );
  } catch (error) {
    await recordFailedExercise(
      pool,
      { id, actor: o.actor, action: 'failover.drill', payload: { scope }, eventId },
      error
    );
    throw error;
  }
}

/** The evidence of a drill or game day stays (failover_drills, failover_events, audit_log); its regions go. */
export async function removeSimulatedScope(pool: Pool, scope: string, log: Logger): Promise<void> {
  await pool
    .query(
      `WITH r AS (DELETE FROM controlroom.regions WHERE scope = $1),
            k AS (DELETE FROM controlroom.region_checks WHERE scope = $1),
            e AS (UPDATE controlroom.failover_events SET outcome = 'failed', finished_at = now(),
                         details = details || '{"failed_because": "the drill ended before the cutover did"}'::jsonb
                   WHERE scope = $1 AND outcome = 'in_progress')
       DELETE FROM controlroom.failover_control WHERE scope = $1`,
      [scope]
    )
    .catch((err: unknown) => log.warn({ err, scope }, 'could not remove the simulated regions'));
}
