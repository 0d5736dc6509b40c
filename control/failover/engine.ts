/**
 * The failover engine of one instance. Instances compete for the scope's lease; only the holder runs the
 * health checks, automatic failover and the steps of a cutover, and each of its state changes runs
 * fenced by the epoch it holds (store.ts `fenced`), so an instance that lost the lease (a pause, a network
 * split) cannot act any more, even before it notices.
 */
import { audit } from '../../core/audit.ts';
import type { Pool, PoolClient } from '../../core/db.ts';
import type { Logger } from '../../core/logger.ts';
import {
  CHECK_LATENCY_BUCKETS,
  nextHealth,
  observedLatencySeconds,
  postJobControl,
  probeHealth,
  readLag,
  readQueueDepth,
  type CallResult,
  type LagResult,
  type ProbeResult,
  type QueueDepthResult,
} from './health.ts';
import {
  ERROR_RATE_WINDOW_SECONDS,
  judgeIntegrity,
  judgeObjectives,
  readIntegrityFigures,
  type Objectives,
} from './integrity.ts';
import { SYSTEM_ACTOR, type FailoverSettings } from './settings.ts';
import {
  acquireLease,
  fenced,
  FencedError,
  finishEvent,
  loadControl,
  loadRegions,
  owedResumes,
  releaseLease,
  renewLease,
  setControl,
  setWeights,
  weightsOf,
  type ControlRow,
  type Cutover,
  type IntegrityFigures,
  type Lease,
  type PendingResume,
  type RegionRow,
} from './store.ts';

export interface Probes {
  health(url: string, timeoutMs: number): Promise<ProbeResult>;
  lag(url: string, timeoutMs: number): Promise<LagResult>;
  queueDepth?(url: string, timeoutMs: number): Promise<QueueDepthResult>;
  jobControl?(
    url: string,
    idempotencyKey: string,
    body: Record<string, unknown>,
    timeoutMs: number
  ): Promise<CallResult>;
}

const defaultProbes: Required<Probes> = {
  health: probeHealth,
  lag: readLag,
  queueDepth: readQueueDepth,
  jobControl: postJobControl,
};

/** Retry delay of an owed resume call after `attempts` failures: 0.5 s doubling, at most 30 s. */
const resumeBackoffMs = (attempts: number) => Math.min(30_000, 500 * 2 ** Math.min(attempts, 10));

/** Runs `body` every `periodMs` (start to start), never overlapping; wake() runs it again at once. */
class Loop {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;
  private again = false;

  constructor(
    /** Time from one run's start to the next; read at each run, so it may depend on the state. */
    private readonly periodMs: () => number,
    private readonly body: () => Promise<void>
  ) {}

  start(delayMs = 0): void {
    this.stopped = false;
    this.schedule(delayMs);
  }

  wake(): void {
    if (this.stopped) return;
    if (this.running) this.again = true;
    else this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.run(), delayMs);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    this.timer = null;
    const started = Date.now();
    this.running = this.body();
    await this.running;
    this.running = null;
    if (this.again) {
      this.again = false;
      this.schedule(0);
    } else {
      this.schedule(Math.max(0, this.periodMs() - (Date.now() - started)));
    }
  }
}

/**
 * How often a standby instance tries to take the lease, at most. A kill -9'd holder's lease is expired by
 * the survivor's liveness sweep (control/failover/lease.ts) within LIVENESS_SWEEP_MS, so the takeover
 * takes at most a sweep plus this, not the lease's full length. Each try is one short transaction.
 */
export const STANDBY_LEASE_POLL_MS = 1_000;

/**
 * The lease loop's period: the holder renews every third of the lease (two renewals may fail before it
 * runs out); a standby tries every third of the lease or every STANDBY_LEASE_POLL_MS, whichever is sooner.
 */
export function leaseTickPeriodMs(leaseMs: number, holding: boolean): number {
  const third = Math.max(100, Math.floor(leaseMs / 3));
  return holding ? third : Math.min(third, STANDBY_LEASE_POLL_MS);
}

const iso = (ms = Date.now()) => new Date(ms).toISOString();

const describeDepths = (depths: Record<string, number | null>) =>
  Object.entries(depths)
    .map(([region, depth]) => `${region}: ${depth === null ? 'queue depth unreadable' : `${depth} queued or running`}`)
    .join(', ') || 'no queue depth read yet';

/**
 * A move the engine made on its own (automatic failover, pin-back): one completed event, in one step at
 * 100%, by the system actor under the lease's epoch, and its audit entry, in the caller's transaction, so
 * the move, its record and its audit commit together or not at all.
 */
async function recordSystemMove(
  client: PoolClient,
  lease: Lease,
  move: {
    kind: 'auto' | 'pin_back';
    action: 'failover.automatic' | 'failover.pinned_back';
    from: string;
    to: string;
    reason: string;
    /** The event's details column. */
    details: Record<string, unknown>;
    /** Added to the audit payload beside scope, from, to, reason and epoch. */
    audited: Record<string, unknown>;
  }
): Promise<void> {
  const { rows } = await client.query<{ id: string }>(
    `INSERT INTO controlroom.failover_events (scope, kind, from_region, to_region, steps, actor, reason, forced, epoch, finished_at, outcome, details)
     VALUES ($1, $2, $3, $4, ARRAY[100], $5, $6, false, $7, now(), 'completed', $8) RETURNING id::text AS id`,
    [lease.scope, move.kind, move.from, move.to, SYSTEM_ACTOR, move.reason, lease.epoch, JSON.stringify(move.details)]
  );
  await audit(client, {
    actor: SYSTEM_ACTOR,
    action: move.action,
    target: `failover_events/${rows[0]!.id}`,
    payload: {
      scope: lease.scope,
      from: move.from,
      to: move.to,
      reason: move.reason,
      ...move.audited,
      epoch: lease.epoch,
    },
  });
}

export class FailoverEngine {
  /** The lease this instance holds, or null. */
  lease: Lease | null = null;
  private acquiredOnce = false;
  private lastPruneAt = 0;
  private readonly leaseLoop: Loop;
  private readonly checkLoop: Loop;
  private readonly driveLoop: Loop;
  private readonly log: Logger;
  private readonly probes: Required<Probes>;

  constructor(
    readonly pool: Pool,
    readonly settings: FailoverSettings,
    logger: Logger,
    probes: Probes = defaultProbes
  ) {
    this.probes = { ...defaultProbes, ...probes };
    this.log = logger.child({ component: 'failover', scope: settings.scope });
    this.leaseLoop = new Loop(
      () => leaseTickPeriodMs(settings.leaseMs, this.lease !== null),
      () => this.guard('lease', () => this.leaseTick())
    );
    this.checkLoop = new Loop(
      () => settings.checkIntervalMs,
      () => this.guard('health check', async () => void (await this.runCheckRound()))
    );
    this.driveLoop = new Loop(
      () => settings.pollMs,
      () => this.guard('cutover', () => this.driveCutover())
    );
  }

  get isLeader(): boolean {
    return this.lease !== null;
  }

  /** Competes for the lease once, then runs the loops. */
  async start(): Promise<void> {
    await this.guard('lease', () => this.leaseTick());
    this.leaseLoop.start(leaseTickPeriodMs(this.settings.leaseMs, this.lease !== null));
    this.checkLoop.start(0);
    this.driveLoop.start(0);
  }

  /** Stops the loops; by default gives the lease up so another instance takes over at once. */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    await Promise.all([this.leaseLoop.stop(), this.checkLoop.stop(), this.driveLoop.stop()]);
    if (options.release !== false && this.lease) {
      await releaseLease(this.pool, this.lease).catch((err: unknown) =>
        this.log.warn({ err }, 'could not release the failover lease')
      );
      this.lease = null;
    }
  }

  /** Looks at the cutover now (after a request on this instance), rather than at the next poll. */
  wake(): void {
    this.driveLoop.wake();
  }

  private async guard(what: string, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      if (error instanceof FencedError) {
        this.log.warn({ err: error.message }, `${what}: lease lost, standing down`);
        this.lease = null;
        return;
      }
      this.log.error({ err: error }, `${what} failed`);
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Lease

  async leaseTick(): Promise<void> {
    const { scope, holder, leaseMs } = this.settings;
    if (this.lease) {
      if (await renewLease(this.pool, this.lease, leaseMs)) return;
      this.log.warn({ epoch: this.lease.epoch }, 'failover lease lost');
      this.lease = null;
    }
    // Only a freshly started instance may take the lease from a holder with its own id (its previous run).
    const lease = await acquireLease(this.pool, scope, holder, leaseMs, !this.acquiredOnce);
    if (!lease) return;
    this.lease = lease;
    this.acquiredOnce = true;
    this.log.info({ epoch: lease.epoch, holder }, 'failover lease acquired');
    this.checkLoop.wake();
    this.driveLoop.wake();
  }

  // -------------------------------------------------------------------------------------------------
  // Health checks and automatic failover

  /** One round of health checks (lease holder only): false when this instance does not hold the lease. */
  async runCheckRound(): Promise<boolean> {
    const lease = this.lease;
    if (!lease) return false;
    const { scope, checkTimeoutMs } = this.settings;
    const regions = await loadRegions(this.pool, scope);
    const results = await Promise.all(
      regions.map(async (r) => {
        const [probe, lag] = await Promise.all([
          this.probes.health(r.health_url, checkTimeoutMs),
          r.replication_lag_url ? this.probes.lag(r.replication_lag_url, checkTimeoutMs) : Promise.resolve(null),
        ]);
        return { name: r.name, probe, lag };
      })
    );
    await fenced(this.pool, lease, async (client, control) => {
      const fresh = await loadRegions(client, scope, true);
      for (const region of fresh) {
        const result = results.find((x) => x.name === region.name);
        if (!result) continue;
        await this.recordCheck(client, lease, region, result.probe, result.lag);
      }
      if (Date.now() - this.lastPruneAt > 60_000) {
        await client.query(`DELETE FROM controlroom.region_checks WHERE at < now() - $1 * interval '1 millisecond'`, [
          this.settings.checkRetentionMs,
        ]);
        this.lastPruneAt = Date.now();
      }
      const moved = await this.autoFailover(client, lease, control);
      if (!moved) await this.pinBack(client, lease);
    });
    return true;
  }

  private async recordCheck(
    client: PoolClient,
    lease: Lease,
    region: RegionRow,
    probe: ProbeResult,
    lag: LagResult | null
  ): Promise<void> {
    const next = nextHealth(region, probe.ok, this.settings);
    // The round trip goes into the region's cumulative histogram in the same statement as the health, so a
    // check is counted exactly once (fenced like every other write of the lease holder).
    const latency = observedLatencySeconds(probe, this.settings.checkTimeoutMs);
    await client.query(
      `UPDATE controlroom.regions
          SET healthy = $3, consecutive_failures = $4, consecutive_successes = $5, last_check_at = now(),
              last_latency_ms = $6, last_error = $7,
              health_changed_at = CASE WHEN $8 THEN now() ELSE health_changed_at END,
              replication_lag_seconds = CASE WHEN $9 THEN $10::float8 ELSE replication_lag_seconds END,
              replication_lag_at = CASE WHEN $9 AND $10::float8 IS NOT NULL THEN now() ELSE replication_lag_at END,
              check_latency_buckets = CASE WHEN $12::float8 IS NULL THEN check_latency_buckets ELSE
                (SELECT array_agg(COALESCE(check_latency_buckets[i], 0) + CASE WHEN $12::float8 <= b THEN 1 ELSE 0 END ORDER BY i)
                   FROM unnest($13::float8[]) WITH ORDINALITY AS u(b, i)) END,
              check_latency_count = check_latency_count + CASE WHEN $12::float8 IS NULL THEN 0 ELSE 1 END,
              check_latency_sum = check_latency_sum + COALESCE($12::float8, 0),
              updated_at = now()
        WHERE scope = $1 AND name = $2
          AND EXISTS (SELECT 1 FROM controlroom.failover_control c WHERE c.scope = $1 AND c.epoch = $11)`,
      [
        region.scope,
        region.name,
        next.healthy,
        next.consecutive_failures,
        next.consecutive_successes,
        probe.latencyMs,
        probe.error,
        next.changed,
        lag !== null,
        lag?.lagSeconds ?? null,
        lease.epoch,
        latency,
        CHECK_LATENCY_BUCKETS,
      ]
    );
    await client.query(
      `INSERT INTO controlroom.region_checks (scope, region, ok, latency_ms, status_code, error) VALUES ($1, $2, $3, $4, $5, $6)`,
      [region.scope, region.name, probe.ok, probe.latencyMs, probe.statusCode, probe.error]
    );
    if (next.changed) {
      const first = region.last_check_at === null;
      await audit(client, {
        actor: SYSTEM_ACTOR,
        action: next.healthy ? 'region.healthy' : 'region.unhealthy',
        target: `regions/${region.scope}/${region.name}`,
        payload: {
          scope: region.scope,
          region: region.name,
          first_check: first,
          consecutive_failures: next.consecutive_failures,
          consecutive_successes: next.consecutive_successes,
          error: probe.error,
          epoch: lease.epoch,
        },
      });
      if (!next.healthy && !first && !region.active && region.traffic_weight > 0) {
        // The standby carries part of the traffic and just turned unhealthy: pin-back is due. With automatic
        // failover on, pinBack() moves the traffic in this same transaction; otherwise the Failover page
        // offers it. Audited either way, once per transition.
        await audit(client, {
          actor: SYSTEM_ACTOR,
          action: 'failover.pin_back_needed',
          target: `regions/${region.scope}/${region.name}`,
          payload: {
            scope: region.scope,
            region: region.name,
            traffic_weight: region.traffic_weight,
            automatic: this.settings.auto,
            error: probe.error,
            epoch: lease.epoch,
          },
        });
      }
      const level = next.healthy ? 'info' : 'warn';
      this.log[level](
        { region: region.name, error: probe.error, first },
        next.healthy ? 'region healthy' : 'region unhealthy'
      );
    }
  }

  /**
   * The active region is unhealthy and the other one is healthy (and passed its last check): move the write
   * role and all traffic at once. A cutover in progress is superseded. When no region is healthy (e.g. the
   * placeholder regions of a demo), nothing moves.
   */
  private async autoFailover(client: PoolClient, lease: Lease, control: ControlRow): Promise<boolean> {
    if (!this.settings.auto) return false;
    const regions = await loadRegions(client, lease.scope);
    const active = regions.find((r) => r.active);
    const other = regions.find((r) => !r.active);
    if (!active || !other || active.healthy || !other.healthy || other.consecutive_failures > 0) return false;
    // An Admin forced the write role onto this region while it was unhealthy: do not undo that override
    // until the region has changed health at least once since (recovered, then failed again).
    const lastMove = await client.query<{ forced: boolean; to_region: string; finished_at: Date }>(
      `SELECT forced, to_region, finished_at FROM controlroom.failover_events
        WHERE scope = $1 AND outcome = 'completed' AND to_region IS NOT NULL ORDER BY finished_at DESC LIMIT 1`,
      [lease.scope]
    );
    const move = lastMove.rows[0];
    if (
      move?.forced &&
      move.to_region === active.name &&
      (active.health_changed_at === null || active.health_changed_at <= move.finished_at)
    ) {
      return false;
    }
    const before = weightsOf(regions);
    const after = Object.fromEntries(regions.map((r) => [r.name, r.name === other.name ? 100 : 0]));
    const superseded = control.cutover?.event_id ?? null;
    if (control.cutover) {
      await finishEvent(client, control.cutover.event_id, 'superseded', lease.epoch, {
        superseded_by: 'automatic failover',
        at_step: control.cutover.applied,
        ...(control.cutover.integrity_before
          ? { integrity: { status: 'skipped', before: control.cutover.integrity_before } }
          : {}),
      });
    }
    // A superseded cutover may have paused the jobs: the automatic failover resumes them.
    const resumes = control.jobs_paused && control.cutover ? owedResumes(control.cutover.event_id, regions) : [];
    await setWeights(client, lease, after, other.name);
    await setControl(client, lease, { writeFrozen: false, cutover: null, jobsPaused: false, owedResumes: resumes });
    const reason = `${active.name} failed ${active.consecutive_failures} health checks in a row${active.last_error ? ` (${active.last_error})` : ''}; ${other.name} is healthy`;
    // RTO from the first failed check of the streak (the outage as the checks saw it) to now; RPO: the
    // new primary's replication lag as last read (null when it has no lag URL: not measured).
    const outage = await client.query<{ since: Date | null }>(
      `SELECT min(at) AS since FROM controlroom.region_checks k
        WHERE k.scope = $1 AND k.region = $2 AND NOT k.ok
          AND k.at > COALESCE((SELECT max(at) FROM controlroom.region_checks o WHERE o.scope = $1 AND o.region = $2 AND o.ok), '-infinity')`,
      [lease.scope, active.name]
    );
    const since = outage.rows[0]?.since ?? null;
    const objectives = judgeObjectives(
      since ? (Date.now() - since.getTime()) / 1000 : null,
      other.replication_lag_seconds,
      this.settings
    );
    const integrity = this.settings.integrity.enabled ? await this.integrityPending(client) : null;
    await recordSystemMove(client, lease, {
      kind: 'auto',
      action: 'failover.automatic',
      from: active.name,
      to: other.name,
      reason,
      details: {
        weights_before: before,
        weights_after: after,
        superseded,
        outage_since: since,
        objectives,
        ...(integrity ? { integrity } : {}),
      },
      audited: { weights_before: before, weights_after: after, superseded, objectives },
    });
    if (resumes.length > 0 || control.jobs_paused)
      await this.auditJobsResumed(client, lease, superseded!, resumes, 'automatic failover');
    this.log.warn({ from: active.name, to: other.name, reason }, 'automatic failover');
    return true;
  }

  /**
   * Pin-back: the standby carries part of the traffic (a shift, or a failover stopped part-way) and is
   * unhealthy while the active region is healthy: all traffic returns to the active region at once. Only
   * with automatic failover on and no cutover in progress (an unforced cutover towards the standby is
   * aborted by driveCutover, which restores its starting weights; this then pins those back). Like
   * automatic failover, it does not undo an Admin's forced move onto the standby until the standby's
   * health has changed since.
   */
  private async pinBack(client: PoolClient, lease: Lease): Promise<void> {
    if (!this.settings.auto) return;
    const control = await loadControl(client, lease.scope);
    if (control.cutover) return;
    const regions = await loadRegions(client, lease.scope);
    const active = regions.find((r) => r.active);
    const standby = regions.find((r) => !r.active && r.traffic_weight > 0);
    if (!active || !standby || standby.healthy || !active.healthy) return;
    const lastMove = await client.query<{ forced: boolean; finished_at: Date }>(
      `SELECT forced, finished_at FROM controlroom.failover_events
        WHERE scope = $1 AND outcome = 'completed' AND kind IN ('shift', 'manual') ORDER BY finished_at DESC LIMIT 1`,
      [lease.scope]
    );
    const move = lastMove.rows[0];
    if (move?.forced && (standby.health_changed_at === null || standby.health_changed_at <= move.finished_at)) return;
    const before = weightsOf(regions);
    const after = Object.fromEntries(regions.map((r) => [r.name, r.name === active.name ? 100 : 0]));
    await setWeights(client, lease, after);
    const reason = `${standby.name} carries ${standby.traffic_weight}% of the traffic but failed ${standby.consecutive_failures} health checks in a row${standby.last_error ? ` (${standby.last_error})` : ''}; ${active.name} is healthy`;
    const weights = { weights_before: before, weights_after: after };
    await recordSystemMove(client, lease, {
      kind: 'pin_back',
      action: 'failover.pinned_back',
      from: standby.name,
      to: active.name,
      reason,
      details: weights,
      audited: weights,
    });
    this.log.warn({ from: standby.name, to: active.name, reason }, 'pinned traffic back to the active region');
  }

  /** The integrity record of a cutover that just completed: "before" as of now, the "after" read is due after the settle time. */
  private async integrityPending(
    client: PoolClient,
    before?: IntegrityFigures | null
  ): Promise<Record<string, unknown>> {
    const now = Date.now();
    const figures =
      before ??
      (await readIntegrityFigures(client, {
        from: new Date(now - ERROR_RATE_WINDOW_SECONDS * 1000),
        to: new Date(now),
      }));
    return {
      status: 'pending',
      before: figures,
      completed_at: iso(now),
      due_at: iso(now + this.settings.integrity.settleMs),
    };
  }

  private async auditJobsResumed(
    client: PoolClient,
    lease: Lease,
    eventId: string,
    resumes: PendingResume[],
    because: string
  ): Promise<void> {
    await audit(client, {
      actor: SYSTEM_ACTOR,
      action: 'failover.jobs_resumed',
      target: `failover_events/${eventId}`,
      payload: {
        scope: lease.scope,
        because,
        resume_calls_owed: resumes.map((r) => ({ region: r.region, url: r.url })),
        epoch: lease.epoch,
      },
    });
  }

  // -------------------------------------------------------------------------------------------------
  // Cutovers

  /** Moves the cutover in progress on by one state, when it is due (lease holder only). */
  async driveCutover(): Promise<void> {
    const lease = this.lease;
    if (!lease) return;
    let control = await loadControl(this.pool, lease.scope);
    if (control.jobs_resume.length > 0) {
      await this.flushResumes(lease, control.jobs_resume);
      control = await loadControl(this.pool, lease.scope);
    }
    if (this.settings.integrity.enabled) await this.runDueIntegrityChecks(lease);
    const c = control.cutover;
    if (!c) return;
    if (c.abort) {
      await this.abort(lease, c, c.abort.actor, c.abort.reason, {
        ipAddress: c.abort.ip_address,
        userAgent: c.abort.user_agent,
      });
      return;
    }
    const regions = await loadRegions(this.pool, lease.scope);
    if (!c.forced) {
      const finalWeights = c.plan[c.plan.length - 1]!;
      const sick = regions.find((r) => (finalWeights[r.name] ?? 0) > (c.initial_weights[r.name] ?? 0) && !r.healthy);
      if (sick) {
        await this.abort(
          lease,
          c,
          SYSTEM_ACTOR,
          `${sick.name} became unhealthy during the cutover${sick.last_error ? ` (${sick.last_error})` : ''}`,
          {}
        );
        return;
      }
    }
    const now = Date.now();
    if (c.phase === 'shifting') {
      if (now < Date.parse(c.next_at)) return;
      const final = c.applied === c.plan.length - 1;
      if (final && c.moves_active) await this.pauseJobs(lease, c);
      else await this.applyStep(lease, c);
      return;
    }
    if (c.phase === 'pausing_jobs' || c.phase === 'draining_jobs') {
      const jobs = c.jobs!;
      const waited = now - Date.parse(jobs.paused_at);
      if (waited >= this.settings.drainJobsTimeoutMs) {
        const why =
          c.phase === 'pausing_jobs'
            ? `background jobs could not be paused within ${Math.round(waited / 1000)} s (pause confirmed by ${jobs.pause_confirmed.join(', ') || 'no region'}${jobs.last_error ? `; last error: ${jobs.last_error}` : ''})`
            : `background jobs did not drain within ${Math.round(waited / 1000)} s (${describeDepths(jobs.depths)})`;
        await this.abort(lease, c, SYSTEM_ACTOR, why, {});
        return;
      }
      if (c.phase === 'pausing_jobs') await this.sendPauses(lease, c, regions);
      else await this.checkDrained(lease, c, regions);
      return;
    }
    // Draining: writes are frozen; move the write role once the router has seen the freeze and the
    // target's replication has caught up (or the drain time is up).
    const frozenFor = now - Date.parse(c.frozen_at ?? c.next_at);
    if (frozenFor < this.settings.drainMinMs) return;
    const target = regions.find((r) => r.name === c.to);
    let lag: LagResult | null = null;
    if (target?.replication_lag_url)
      lag = await this.probes.lag(target.replication_lag_url, this.settings.checkTimeoutMs);
    const caughtUp = lag === null || (lag.lagSeconds !== null && lag.lagSeconds <= this.settings.drainMaxLagSeconds);
    if (!caughtUp && frozenFor < this.settings.drainMaxMs) return;
    await this.complete(lease, c, {
      frozen_ms: frozenFor,
      target_lag_seconds: lag?.lagSeconds ?? null,
      lag_error: lag?.error ?? null,
      caught_up: caughtUp,
    });
  }

  /** Runs `work` fenced, if the cutover is still in the state this instance decided on. */
  private async transition(
    lease: Lease,
    c: Cutover,
    work: (client: PoolClient, control: ControlRow) => Promise<void>
  ): Promise<void> {
    await fenced(this.pool, lease, async (client, control) => {
      const fresh = control.cutover;
      if (
        !fresh ||
        fresh.event_id !== c.event_id ||
        fresh.applied !== c.applied ||
        fresh.phase !== c.phase ||
        Boolean(fresh.abort) !== Boolean(c.abort)
      )
        return;
      await work(client, control);
    });
  }

  private async timeline(
    client: PoolClient,
    eventId: string,
    epoch: number,
    entry: Record<string, unknown>
  ): Promise<void> {
    await client.query(
      `UPDATE controlroom.failover_events
          SET epoch = $3, details = jsonb_set(details, '{timeline}', COALESCE(details->'timeline', '[]'::jsonb) || $2::jsonb)
        WHERE id = $1`,
      [eventId, JSON.stringify([{ at: iso(), epoch, ...entry }]), epoch]
    );
  }

  private async applyStep(lease: Lease, c: Cutover): Promise<void> {
    await this.transition(lease, c, async (client, control) => {
      const weights = c.plan[c.applied]!;
      await setWeights(client, lease, weights);
      const applied = c.applied + 1;
      const done = applied === c.plan.length;
      await setControl(client, lease, {
        writeFrozen: control.write_frozen,
        cutover: done ? null : { ...c, applied, next_at: iso(Date.now() + this.settings.stepMs) },
      });
      await this.timeline(client, c.event_id, lease.epoch, { what: 'step', step: applied, of: c.plan.length, weights });
      if (done) await finishEvent(client, c.event_id, 'completed', lease.epoch, { weights_after: weights });
      await audit(client, {
        actor: SYSTEM_ACTOR,
        action: done && c.kind === 'shift' ? 'failover.shift_applied' : 'failover.step_applied',
        target: `failover_events/${c.event_id}`,
        payload: {
          scope: lease.scope,
          kind: c.kind,
          step: applied,
          of: c.plan.length,
          weights,
          requested_by: c.actor,
          epoch: lease.epoch,
        },
      });
      this.log.info({ event: c.event_id, step: applied, of: c.plan.length, weights }, 'cutover step applied');
    });
  }

  /**
   * Before the write role moves: jobs_paused goes up in the routing view (the TMS stops starting background
   * work), then each region's pause endpoint is called (sendPauses), then the queues must drain
   * (checkDrained), and only then are writes frozen.
   */
  private async pauseJobs(lease: Lease, c: Cutover): Promise<void> {
    await this.transition(lease, c, async (client) => {
      const jobs = { paused_at: iso(), pause_confirmed: [], depths: {}, drained_at: null, last_error: null };
      await setControl(client, lease, {
        writeFrozen: false,
        cutover: { ...c, phase: 'pausing_jobs', jobs },
        jobsPaused: true,
      });
      await this.timeline(client, c.event_id, lease.epoch, { what: 'jobs_paused' });
      await audit(client, {
        actor: SYSTEM_ACTOR,
        action: 'failover.jobs_paused',
        target: `failover_events/${c.event_id}`,
        payload: {
          scope: lease.scope,
          from: c.from,
          to: c.to,
          drain_timeout_seconds: this.settings.drainJobsTimeoutMs / 1000,
          epoch: lease.epoch,
        },
      });
      this.log.info({ event: c.event_id }, 'background jobs paused for the cutover');
    });
  }

  /** Calls the pause endpoint of every region that has one and has not confirmed yet; retried each poll. */
  private async sendPauses(lease: Lease, c: Cutover, regions: RegionRow[]): Promise<void> {
    const jobs = c.jobs!;
    const due = regions.filter((r) => r.pause_url && !jobs.pause_confirmed.includes(r.name));
    const results = await Promise.all(
      due.map(async (r) => ({
        region: r.name,
        result: await this.probes.jobControl(
          r.pause_url!,
          `pause:${c.event_id}:${r.name}`,
          { action: 'pause', event_id: c.event_id, region: r.name },
          this.settings.checkTimeoutMs
        ),
      }))
    );
    const confirmed = results.filter((x) => x.result.ok).map((x) => x.region);
    const failed = results.filter((x) => !x.result.ok);
    const allConfirmed = failed.length === 0;
    if (confirmed.length === 0 && !allConfirmed) {
      const lastError = failed.map((f) => `${f.region}: ${f.result.error}`).join('; ');
      if (lastError !== jobs.last_error)
        await this.transition(lease, c, (client) =>
          setControl(client, lease, { writeFrozen: false, cutover: { ...c, jobs: { ...jobs, last_error: lastError } } })
        );
      return;
    }
    await this.transition(lease, c, async (client) => {
      const next = {
        ...jobs,
        pause_confirmed: [...jobs.pause_confirmed, ...confirmed],
        last_error: failed.length ? failed.map((f) => `${f.region}: ${f.result.error}`).join('; ') : null,
      };
      await setControl(client, lease, {
        writeFrozen: false,
        cutover: { ...c, phase: allConfirmed ? 'draining_jobs' : 'pausing_jobs', jobs: next },
      });
      for (const region of confirmed) {
        const url = regions.find((r) => r.name === region)!.pause_url;
        await this.timeline(client, c.event_id, lease.epoch, { what: 'pause_sent', region });
        await audit(client, {
          actor: SYSTEM_ACTOR,
          action: 'failover.jobs_pause_sent',
          target: `failover_events/${c.event_id}`,
          payload: { scope: lease.scope, region, url, epoch: lease.epoch },
        });
      }
    });
  }

  /**
   * Reads each region's queue depth (its queue_depth_url, or the TMS's agent_tasks queued + running count
   * for regions without one). All at 0: drained, and writes freeze in the same transaction. An unreadable
   * depth counts as not drained, so the drain timeout, not a guess, decides.
   */
  private async checkDrained(lease: Lease, c: Cutover, regions: RegionRow[]): Promise<void> {
    const jobs = c.jobs!;
    const needsTms = regions.some((r) => !r.queue_depth_url);
    const tms = needsTms ? await this.tmsQueueDepth() : null;
    const readings = await Promise.all(
      regions.map(async (r) => {
        if (!r.queue_depth_url) return [r.name, tms!] as const;
        return [r.name, await this.probes.queueDepth(r.queue_depth_url, this.settings.checkTimeoutMs)] as const;
      })
    );
    const depths = Object.fromEntries(readings.map(([name, q]) => [name, q.depth]));
    const errors = readings.filter(([, q]) => q.error).map(([name, q]) => `${name}: ${q.error}`);
    const drained = readings.every(([, q]) => q.depth === 0);
    if (!drained) {
      const lastError = errors.length ? errors.join('; ') : null;
      if (JSON.stringify(depths) === JSON.stringify(jobs.depths) && lastError === jobs.last_error) return;
      await this.transition(lease, c, (client) =>
        setControl(client, lease, {
          writeFrozen: false,
          cutover: { ...c, jobs: { ...jobs, depths, last_error: lastError } },
        })
      );
      return;
    }
    await this.transition(lease, c, async (client) => {
      const frozenAt = iso();
      const waitedMs = Date.now() - Date.parse(jobs.paused_at);
      await setControl(client, lease, {
        writeFrozen: true,
        cutover: {
          ...c,
          phase: 'draining',
          frozen_at: frozenAt,
          jobs: { ...jobs, depths, drained_at: frozenAt, last_error: null },
        },
      });
      await this.timeline(client, c.event_id, lease.epoch, { what: 'jobs_drained', depths, waited_ms: waitedMs });
      await audit(client, {
        actor: SYSTEM_ACTOR,
        action: 'failover.jobs_drained',
        target: `failover_events/${c.event_id}`,
        payload: { scope: lease.scope, depths, waited_ms: waitedMs, epoch: lease.epoch },
      });
      await this.timeline(client, c.event_id, lease.epoch, { what: 'write_frozen' });
      await audit(client, {
        actor: SYSTEM_ACTOR,
        action: 'failover.write_frozen',
        target: `failover_events/${c.event_id}`,
        payload: { scope: lease.scope, from: c.from, to: c.to, requested_by: c.actor, epoch: lease.epoch },
      });
      this.log.info(
        { event: c.event_id, from: c.from, to: c.to, waited_ms: waitedMs },
        'background jobs drained; writes frozen for the cutover'
      );
    });
  }

  /** The TMS's own queue: agent tasks queued or running. */
  private async tmsQueueDepth(): Promise<QueueDepthResult> {
    try {
      const { rows } = await this.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM agent_tasks WHERE status IN ('queued', 'running')`
      );
      return { depth: rows[0]!.n, error: null };
    } catch (error) {
      return { depth: null, error: `agent_tasks: ${(error as Error).message}` };
    }
  }

  /**
   * Calls the resume endpoints still owed (after a cutover ended with jobs paused). A call that fails is
   * retried with backoff until it answers 2xx; each success is removed and audited in one fenced
   * transaction, so a crash between the call and the record repeats the call (harmless: same
   * Idempotency-Key), never skips it.
   */
  private async flushResumes(lease: Lease, owed: PendingResume[]): Promise<void> {
    const now = Date.now();
    const due = owed.filter((r) => Date.parse(r.next_at) <= now);
    if (due.length === 0) return;
    const results = await Promise.all(
      due.map(async (r) => ({
        r,
        result: await this.probes.jobControl(
          r.url,
          `resume:${r.event_id}:${r.region}`,
          { action: 'resume', event_id: r.event_id, region: r.region },
          this.settings.checkTimeoutMs
        ),
      }))
    );
    await fenced(this.pool, lease, async (client, control) => {
      const same = (a: PendingResume, b: PendingResume) => a.event_id === b.event_id && a.region === b.region;
      const remaining: PendingResume[] = [];
      for (const entry of control.jobs_resume) {
        const outcome = results.find((x) => same(x.r, entry));
        if (!outcome) remaining.push(entry);
        else if (!outcome.result.ok) {
          const attempts = entry.attempts + 1;
          remaining.push({
            ...entry,
            attempts,
            last_error: outcome.result.error,
            next_at: iso(Date.now() + resumeBackoffMs(attempts)),
          });
          if (attempts === 1 || attempts % 10 === 0)
            this.log.warn(
              { region: entry.region, url: entry.url, attempts, error: outcome.result.error },
              'resume call failed; retrying'
            );
        }
      }
      await client.query(
        `UPDATE controlroom.failover_control SET jobs_resume = $2::jsonb, updated_at = now() WHERE scope = $1 AND epoch = $3`,
        [lease.scope, JSON.stringify(remaining), lease.epoch]
      );
      for (const { r } of results.filter((x) => x.result.ok)) {
        if (!control.jobs_resume.some((e) => same(e, r))) continue;
        await this.timeline(client, r.event_id, lease.epoch, {
          what: 'resume_sent',
          region: r.region,
          attempts: r.attempts + 1,
        });
        await audit(client, {
          actor: SYSTEM_ACTOR,
          action: 'failover.jobs_resume_sent',
          target: `failover_events/${r.event_id}`,
          payload: { scope: lease.scope, region: r.region, url: r.url, attempts: r.attempts + 1, epoch: lease.epoch },
        });
      }
    });
  }

  /** Post-cutover integrity checks whose settle time is over: read "after", judge, record, audit. */
  private async runDueIntegrityChecks(lease: Lease): Promise<void> {
    const { rows } = await this.pool.query<{
      id: string;
      integrity: { before: IntegrityFigures; completed_at: string; due_at: string };
    }>(
      `SELECT id::text AS id, details->'integrity' AS integrity FROM controlroom.failover_events
        WHERE scope = $1 AND details->'integrity'->>'status' = 'pending' AND (details->'integrity'->>'due_at')::timestamptz <= now()
        ORDER BY id`,
      [lease.scope]
    );
    for (const row of rows) {
      const completedAt = new Date(row.integrity.completed_at);
      const after = await readIntegrityFigures(this.pool, {
        from: completedAt,
        to: new Date(Math.max(Date.now(), completedAt.getTime() + 1)),
      });
      const checks = judgeIntegrity(row.integrity.before, after, this.settings.integrity);
      const passed = checks.every((x) => x.passed);
      await fenced(this.pool, lease, async (client) => {
        const { rowCount } = await client.query(
          `UPDATE controlroom.failover_events
              SET details = jsonb_set(details, '{integrity}', details->'integrity' || $2::jsonb)
            WHERE id = $1 AND details->'integrity'->>'status' = 'pending'`,
          [row.id, JSON.stringify({ status: passed ? 'passed' : 'failed', after, checks, checked_at: iso() })]
        );
        if (rowCount !== 1) return;
        await audit(client, {
          actor: SYSTEM_ACTOR,
          action: passed ? 'failover.integrity_passed' : 'failover.integrity_failed',
          target: `failover_events/${row.id}`,
          payload: { scope: lease.scope, passed, checks, epoch: lease.epoch },
        });
      });
      if (!passed)
        this.log.error(
          { event: row.id, checks: checks.filter((x) => !x.passed) },
          'post-cutover integrity check failed'
        );
    }
  }

  /**
   * The write role moves, writes unfreeze and background jobs resume, in one transaction; the resume calls
   * are owed from here (flushResumes). The cutover is judged against the RTO and RPO targets: RTO from
   * the request to now, RPO the target's replication lag when the write role moved (null without a lag
   * URL: not measured).
   */
  private async complete(
    lease: Lease,
    c: Cutover,
    drain: { target_lag_seconds: number | null } & Record<string, unknown>
  ): Promise<void> {
    await this.transition(lease, c, async (client) => {
      const weights = c.plan[c.plan.length - 1]!;
      const regions = await loadRegions(client, lease.scope);
      const resumes = c.jobs ? owedResumes(c.event_id, regions) : [];
      await setWeights(client, lease, weights, c.to!);
      await setControl(client, lease, { writeFrozen: false, cutover: null, jobsPaused: false, owedResumes: resumes });
      await this.timeline(client, c.event_id, lease.epoch, {
        what: 'completed',
        step: c.plan.length,
        of: c.plan.length,
        weights,
        active: c.to,
      });
      if (c.jobs)
        await this.timeline(client, c.event_id, lease.epoch, {
          what: 'jobs_resumed',
          resume_calls: resumes.map((r) => r.region),
        });
      const objectives: Objectives = judgeObjectives(
        (Date.now() - Date.parse(c.requested_at)) / 1000,
        drain.target_lag_seconds,
        this.settings
      );
      const integrity = c.integrity_before ? await this.integrityPending(client, c.integrity_before) : null;
      await finishEvent(client, c.event_id, 'completed', lease.epoch, {
        weights_after: weights,
        drain,
        jobs: c.jobs ?? null,
        objectives,
        ...(integrity ? { integrity } : {}),
      });
      await audit(client, {
        actor: SYSTEM_ACTOR,
        action: 'failover.completed',
        target: `failover_events/${c.event_id}`,
        payload: {
          scope: lease.scope,
          kind: c.kind,
          from: c.from,
          to: c.to,
          weights,
          drain,
          objectives,
          forced: c.forced,
          requested_by: c.actor,
          epoch: lease.epoch,
        },
      });
      if (c.jobs) await this.auditJobsResumed(client, lease, c.event_id, resumes, 'cutover completed');
      this.log.info(
        { event: c.event_id, from: c.from, to: c.to, drain, objectives },
        'failover completed: writes unfrozen, jobs resumed'
      );
    });
  }

  private async abort(
    lease: Lease,
    c: Cutover,
    actor: string,
    reason: string,
    meta: { ipAddress?: string | null; userAgent?: string | null }
  ): Promise<void> {
    await this.transition(lease, c, async (client) => {
      const regions = await loadRegions(client, lease.scope);
      const resumes = c.jobs ? owedResumes(c.event_id, regions) : [];
      await setWeights(client, lease, c.initial_weights);
      await setControl(client, lease, { writeFrozen: false, cutover: null, jobsPaused: false, owedResumes: resumes });
      await this.timeline(client, c.event_id, lease.epoch, {
        what: 'aborted',
        by: actor,
        reason,
        weights: c.initial_weights,
      });
      if (c.jobs)
        await this.timeline(client, c.event_id, lease.epoch, {
          what: 'jobs_resumed',
          resume_calls: resumes.map((r) => r.region),
        });
      await finishEvent(client, c.event_id, 'aborted', lease.epoch, {
        aborted_by: actor,
        abort_reason: reason,
        at_step: c.applied,
        phase: c.phase,
        jobs: c.jobs ?? null,
        ...(c.integrity_before ? { integrity: { status: 'skipped', before: c.integrity_before } } : {}),
      });
      if (c.jobs) await this.auditJobsResumed(client, lease, c.event_id, resumes, 'cutover aborted');
      await audit(client, {
        actor,
        action: 'failover.aborted',
        target: `failover_events/${c.event_id}`,
        payload: {
          scope: lease.scope,
          kind: c.kind,
          from: c.from,
          to: c.to,
          reason,
          at_step: c.applied,
          of: c.plan.length,
          restored_weights: c.initial_weights,
          epoch: lease.epoch,
        },
        ipAddress: meta.ipAddress ?? null,
        userAgent: meta.userAgent ?? null,
      });
      this.log.warn({ event: c.event_id, by: actor, reason }, 'cutover aborted');
    });
  }
}
