/**
 * The failover engine of one instance. Instances compete for the scope's lease; only the holder runs the
 * health checks, automatic failover and the steps of a cutover, and each of its state changes runs
 * fenced by the epoch it holds (store.ts `fenced`), so an instance that lost the lease (a pause, a network
 * split) cannot act any more, even before it notices.
 */
import { audit } from '../../core/audit.ts';
import type { Pool, PoolClient } from '../../core/db.ts';
import type { Logger } from '../../core/logger.ts';
import { nextHealth, probeHealth, readLag, type LagResult, type ProbeResult } from './health.ts';
import { SYSTEM_ACTOR, type FailoverSettings } from './settings.ts';
import {
  acquireLease,
  fenced,
  FencedError,
  finishEvent,
  loadControl,
  loadRegions,
  releaseLease,
  renewLease,
  setControl,
  setWeights,
  weightsOf,
  type ControlRow,
  type Cutover,
  type Lease,
  type RegionRow,
} from './store.ts';

export interface Probes {
  health(url: string, timeoutMs: number): Promise<ProbeResult>;
  lag(url: string, timeoutMs: number): Promise<LagResult>;
}

const defaultProbes: Probes = { health: probeHealth, lag: readLag };

/** Runs `body` every `periodMs` (start to start), never overlapping; wake() runs it again at once. */
class Loop {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;
  private again = false;

  constructor(
    private readonly periodMs: number,
    private readonly body: () => Promise<void>,
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
      this.schedule(Math.max(0, this.periodMs - (Date.now() - started)));
    }
  }
}

const iso = (ms = Date.now()) => new Date(ms).toISOString();

export class FailoverEngine {
  /** The lease this instance holds, or null. */
  lease: Lease | null = null;
  private acquiredOnce = false;
  private lastPruneAt = 0;
  private readonly leaseLoop: Loop;
  private readonly checkLoop: Loop;
  private readonly driveLoop: Loop;
  private readonly log: Logger;

  constructor(
    readonly pool: Pool,
    readonly settings: FailoverSettings,
    logger: Logger,
    private readonly probes: Probes = defaultProbes,
  ) {
    this.log = logger.child({ component: 'failover', scope: settings.scope });
    this.leaseLoop = new Loop(Math.max(100, Math.floor(settings.leaseMs / 3)), () => this.guard('lease', () => this.leaseTick()));
    this.checkLoop = new Loop(settings.checkIntervalMs, () => this.guard('health check', async () => void (await this.runCheckRound())));
    this.driveLoop = new Loop(settings.pollMs, () => this.guard('cutover', () => this.driveCutover()));
  }

  get isLeader(): boolean {
    return this.lease !== null;
  }

  /** Competes for the lease once, then runs the loops. */
  async start(): Promise<void> {
    await this.guard('lease', () => this.leaseTick());
    const leasePeriod = Math.max(100, Math.floor(this.settings.leaseMs / 3));
    this.leaseLoop.start(leasePeriod);
    this.checkLoop.start(0);
    this.driveLoop.start(0);
  }

  /** Stops the loops; by default gives the lease up so another instance takes over at once. */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    await Promise.all([this.leaseLoop.stop(), this.checkLoop.stop(), this.driveLoop.stop()]);
    if (options.release !== false && this.lease) {
      await releaseLease(this.pool, this.lease).catch((err: unknown) => this.log.warn({ err }, 'could not release the failover lease'));
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
      }),
    );
    await fenced(this.pool, lease, async (client, control) => {
      const fresh = await loadRegions(client, scope, true);
      for (const region of fresh) {
        const result = results.find((x) => x.name === region.name);
        if (!result) continue;
        await this.recordCheck(client, lease, region, result.probe, result.lag);
      }
      if (Date.now() - this.lastPruneAt > 60_000) {
        await client.query(`DELETE FROM controlroom.region_checks WHERE at < now() - $1 * interval '1 millisecond'`, [this.settings.checkRetentionMs]);
        this.lastPruneAt = Date.now();
      }
      await this.autoFailover(client, lease, control);
    });
    return true;
  }

  private async recordCheck(client: PoolClient, lease: Lease, region: RegionRow, probe: ProbeResult, lag: LagResult | null): Promise<void> {
    const next = nextHealth(region, probe.ok, this.settings);
    await client.query(
      `UPDATE controlroom.regions
          SET healthy = $3, consecutive_failures = $4, consecutive_successes = $5, last_check_at = now(),
              last_latency_ms = $6, last_error = $7,
              health_changed_at = CASE WHEN $8 THEN now() ELSE health_changed_at END,
              replication_lag_seconds = CASE WHEN $9 THEN $10::float8 ELSE replication_lag_seconds END,
              replication_lag_at = CASE WHEN $9 AND $10::float8 IS NOT NULL THEN now() ELSE replication_lag_at END,
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
      ],
    );
    await client.query(
      `INSERT INTO controlroom.region_checks (scope, region, ok, latency_ms, status_code, error) VALUES ($1, $2, $3, $4, $5, $6)`,
      [region.scope, region.name, probe.ok, probe.latencyMs, probe.statusCode, probe.error],
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
      const level = next.healthy ? 'info' : 'warn';
      this.log[level]({ region: region.name, error: probe.error, first }, next.healthy ? 'region healthy' : 'region unhealthy');
    }
  }

  /**
   * The active region is unhealthy and the other one is healthy (and passed its last check): move the write
   * role and all traffic at once. A cutover in progress is superseded. When no region is healthy (e.g. the
   * placeholder regions of a demo), nothing moves.
   */
  private async autoFailover(client: PoolClient, lease: Lease, control: ControlRow): Promise<void> {
    if (!this.settings.auto) return;
    const regions = await loadRegions(client, lease.scope);
    const active = regions.find((r) => r.active);
    const other = regions.find((r) => !r.active);
    if (!active || !other || active.healthy || !other.healthy || other.consecutive_failures > 0) return;
    // An Admin forced the write role onto this region while it was unhealthy: do not undo that override
    // until the region has changed health at least once since (recovered, then failed again).
    const lastMove = await client.query<{ forced: boolean; to_region: string; finished_at: Date }>(
      `SELECT forced, to_region, finished_at FROM controlroom.failover_events
        WHERE scope = $1 AND outcome = 'completed' AND to_region IS NOT NULL ORDER BY finished_at DESC LIMIT 1`,
      [lease.scope],
    );
    const move = lastMove.rows[0];
    if (move?.forced && move.to_region === active.name && (active.health_changed_at === null || active.health_changed_at <= move.finished_at)) {
      return;
    }
    const before = weightsOf(regions);
    const after = Object.fromEntries(regions.map((r) => [r.name, r.name === other.name ? 100 : 0]));
    const superseded = control.cutover?.event_id ?? null;
    if (control.cutover) {
      await finishEvent(client, control.cutover.event_id, 'superseded', lease.epoch, { superseded_by: 'automatic failover', at_step: control.cutover.applied });
    }
    await setWeights(client, lease, after, other.name);
    await setControl(client, lease, { writeFrozen: false, cutover: null });
    const reason = `${active.name} failed ${active.consecutive_failures} health checks in a row${active.last_error ? ` (${active.last_error})` : ''}; ${other.name} is healthy`;
    const { rows } = await client.query<{ id: string }>(
      `INSERT INTO controlroom.failover_events (scope, kind, from_region, to_region, steps, actor, reason, forced, epoch, finished_at, outcome, details)
       VALUES ($1, 'auto', $2, $3, ARRAY[100], $4, $5, false, $6, now(), 'completed', $7) RETURNING id::text AS id`,
      [lease.scope, active.name, other.name, SYSTEM_ACTOR, reason, lease.epoch, JSON.stringify({ weights_before: before, weights_after: after, superseded })],
    );
    await audit(client, {
      actor: SYSTEM_ACTOR,
      action: 'failover.automatic',
      target: `failover_events/${rows[0]!.id}`,
      payload: { scope: lease.scope, from: active.name, to: other.name, reason, weights_before: before, weights_after: after, superseded, epoch: lease.epoch },
    });
    this.log.warn({ from: active.name, to: other.name, reason }, 'automatic failover');
  }

  // -------------------------------------------------------------------------------------------------
  // Cutovers

  /** Moves the cutover in progress on by one state, when it is due (lease holder only). */
  async driveCutover(): Promise<void> {
    const lease = this.lease;
    if (!lease) return;
    const control = await loadControl(this.pool, lease.scope);
    const c = control.cutover;
    if (!c) return;
    if (c.abort) {
      await this.abort(lease, c, c.abort.actor, c.abort.reason, { ipAddress: c.abort.ip_address, userAgent: c.abort.user_agent });
      return;
    }
    const regions = await loadRegions(this.pool, lease.scope);
    if (!c.forced) {
      const finalWeights = c.plan[c.plan.length - 1]!;
      const sick = regions.find((r) => (finalWeights[r.name] ?? 0) > (c.initial_weights[r.name] ?? 0) && !r.healthy);
      if (sick) {
        await this.abort(lease, c, SYSTEM_ACTOR, `${sick.name} became unhealthy during the cutover${sick.last_error ? ` (${sick.last_error})` : ''}`, {});
        return;
      }
    }
    const now = Date.now();
    if (c.phase === 'shifting') {
      if (now < Date.parse(c.next_at)) return;
      const final = c.applied === c.plan.length - 1;
      if (final && c.moves_active) await this.freezeWrites(lease, c);
      else await this.applyStep(lease, c);
      return;
    }
    // Draining: writes are frozen; move the write role once the router has seen the freeze and the
    // target's replication has caught up (or the drain time is up).
    const frozenFor = now - Date.parse(c.frozen_at ?? c.next_at);
    if (frozenFor < this.settings.drainMinMs) return;
    const target = regions.find((r) => r.name === c.to);
    let lag: LagResult | null = null;
    if (target?.replication_lag_url) lag = await this.probes.lag(target.replication_lag_url, this.settings.checkTimeoutMs);
    const caughtUp = lag === null || (lag.lagSeconds !== null && lag.lagSeconds <= this.settings.drainMaxLagSeconds);
    if (!caughtUp && frozenFor < this.settings.drainMaxMs) return;
    await this.complete(lease, c, { frozen_ms: frozenFor, target_lag_seconds: lag?.lagSeconds ?? null, lag_error: lag?.error ?? null, caught_up: caughtUp });
  }

  /** Runs `work` fenced, if the cutover is still in the state this instance decided on. */
  private async transition(lease: Lease, c: Cutover, work: (client: PoolClient, control: ControlRow) => Promise<void>): Promise<void> {
    await fenced(this.pool, lease, async (client, control) => {
      const fresh = control.cutover;
      if (!fresh || fresh.event_id !== c.event_id || fresh.applied !== c.applied || fresh.phase !== c.phase || Boolean(fresh.abort) !== Boolean(c.abort)) return;
      await work(client, control);
    });
  }

  private async timeline(client: PoolClient, eventId: string, epoch: number, entry: Record<string, unknown>): Promise<void> {
    await client.query(
      `UPDATE controlroom.failover_events
          SET epoch = $3, details = jsonb_set(details, '{timeline}', COALESCE(details->'timeline', '[]'::jsonb) || $2::jsonb)
        WHERE id = $1`,
      [eventId, JSON.stringify([{ at: iso(), epoch, ...entry }]), epoch],
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
        payload: { scope: lease.scope, kind: c.kind, step: applied, of: c.plan.length, weights, requested_by: c.actor, epoch: lease.epoch },
      });
      this.log.info({ event: c.event_id, step: applied, of: c.plan.length, weights }, 'cutover step applied');
    });
  }

  private async freezeWrites(lease: Lease, c: Cutover): Promise<void> {
    await this.transition(lease, c, async (client) => {
      const frozenAt = iso();
      await setControl(client, lease, { writeFrozen: true, cutover: { ...c, phase: 'draining', frozen_at: frozenAt } });
      await this.timeline(client, c.event_id, lease.epoch, { what: 'write_frozen' });
      await audit(client, {
        actor: SYSTEM_ACTOR,
        action: 'failover.write_frozen',
        target: `failover_events/${c.event_id}`,
        payload: { scope: lease.scope, from: c.from, to: c.to, requested_by: c.actor, epoch: lease.epoch },
      });
      this.log.info({ event: c.event_id, from: c.from, to: c.to }, 'writes frozen for the cutover');
    });
  }

  private async complete(lease: Lease, c: Cutover, drain: Record<string, unknown>): Promise<void> {
    await this.transition(lease, c, async (client) => {
      const weights = c.plan[c.plan.length - 1]!;
      await setWeights(client, lease, weights, c.to!);
      await setControl(client, lease, { writeFrozen: false, cutover: null });
      await this.timeline(client, c.event_id, lease.epoch, { what: 'completed', step: c.plan.length, of: c.plan.length, weights, active: c.to });
      await finishEvent(client, c.event_id, 'completed', lease.epoch, { weights_after: weights, drain });
      await audit(client, {
        actor: SYSTEM_ACTOR,
        action: 'failover.completed',
        target: `failover_events/${c.event_id}`,
        payload: { scope: lease.scope, kind: c.kind, from: c.from, to: c.to, weights, drain, forced: c.forced, requested_by: c.actor, epoch: lease.epoch },
      });
      this.log.info({ event: c.event_id, from: c.from, to: c.to, drain }, 'failover completed: writes unfrozen');
    });
  }

  private async abort(
    lease: Lease,
    c: Cutover,
    actor: string,
    reason: string,
    meta: { ipAddress?: string | null; userAgent?: string | null },
  ): Promise<void> {
    await this.transition(lease, c, async (client) => {
      await setWeights(client, lease, c.initial_weights);
      await setControl(client, lease, { writeFrozen: false, cutover: null });
      await this.timeline(client, c.event_id, lease.epoch, { what: 'aborted', by: actor, reason, weights: c.initial_weights });
      await finishEvent(client, c.event_id, 'aborted', lease.epoch, { aborted_by: actor, abort_reason: reason, at_step: c.applied, phase: c.phase });
      await audit(client, {
        actor,
        action: 'failover.aborted',
        target: `failover_events/${c.event_id}`,
        payload: { scope: lease.scope, kind: c.kind, from: c.from, to: c.to, reason, at_step: c.applied, of: c.plan.length, restored_weights: c.initial_weights, epoch: lease.epoch },
        ipAddress: meta.ipAddress ?? null,
        userAgent: meta.userAgent ?? null,
      });
      this.log.warn({ event: c.event_id, by: actor, reason }, 'cutover aborted');
    });
  }
}
