import { audit } from '../../core/audit.ts';
import { withTransaction, type Pool, type PoolClient } from '../../core/db.ts';
import type { Logger } from '../../core/logger.ts';
import { SYSTEM_ACTOR, type RegionSpec } from './settings.ts';

export type Db = Pool | PoolClient;

export interface RegionRow {
  scope: string;
  name: string;
  role: 'primary' | 'secondary';
  base_url: string;
  health_url: string;
  replication_lag_url: string | null;
  pause_url: string | null;
  resume_url: string | null;
  queue_depth_url: string | null;
  traffic_weight: number;
  active: boolean;
  healthy: boolean;
  consecutive_failures: number;
  consecutive_successes: number;
  last_check_at: Date | null;
  last_latency_ms: number | null;
  last_error: string | null;
  health_changed_at: Date | null;
  replication_lag_seconds: number | null;
  replication_lag_at: Date | null;
}

export type Weights = Record<string, number>;

export interface AbortRequest {
  actor: string;
  reason: string;
  requested_at: string;
  ip_address: string | null;
  user_agent: string | null;
}

/** Background jobs of a cutover that moves the write role: paused, then drained, before writes freeze. */
export interface CutoverJobs {
  /** When jobs_paused was set (ISO): the drain timeout runs from here. */
  paused_at: string;
  /** Regions whose pause endpoint answered 2xx (regions without one need no call). */
  pause_confirmed: string[];
  /** Last queue depth read per region (null: unreadable), and when the queues were all seen empty. */
  depths: Record<string, number | null>;
  drained_at: string | null;
  last_error: string | null;
}

/** TMS figures compared before and after a cutover (post-cutover integrity checks). */
export interface IntegrityFigures {
  at: string;
  invoices: number;
  agent_queue_depth: number;
  /** 5xx / all API requests over the window; null when there were no requests. */
  api_error_rate: number | null;
  api_requests: number;
  window_seconds: number;
}

/** A resume call still owed to a region's resume endpoint (failover_control.jobs_resume). */
export interface PendingResume {
  event_id: string;
  region: string;
  url: string;
  attempts: number;
  next_at: string;
  last_error: string | null;
}

/** A stepped cutover in progress, as stored in failover_control.cutover. */
export interface Cutover {
  event_id: string;
  kind: 'manual' | 'shift' | 'drill';
  /** The active (write) region when the cutover was requested. */
  from: string;
  /** The region that takes the write role at the end (null for a traffic shift). */
  to: string | null;
  moves_active: boolean;
  /** The target's weight at each step (failover), or null (shift). */
  steps: number[] | null;
  /** The weights of every region at each step. */
  plan: Weights[];
  /** Steps applied so far. */
  applied: number;
  /** Earliest time of the next step (ISO). */
  next_at: string;
  /**
   * 'pausing_jobs': jobs_paused is set and the regions' pause endpoints are being called;
   * 'draining_jobs': waiting for every region's background queue to reach 0 (or the drain timeout);
   * 'draining': writes are frozen before the write role moves.
   */
  phase: 'shifting' | 'pausing_jobs' | 'draining_jobs' | 'draining';
  /** Set once the jobs were paused (cutovers that move the write role only). */
  jobs?: CutoverJobs | null;
  frozen_at: string | null;
  initial_weights: Weights;
  forced: boolean;
  reason: string;
  actor: string;
  requested_at: string;
  abort: AbortRequest | null;
  /** The TMS figures read when the cutover was requested (live scope), for the post-cutover integrity checks. */
  integrity_before?: IntegrityFigures | null;
}

export interface ControlRow {
  scope: string;
  epoch: number;
  lease_holder: string | null;
  lease_expires_at: Date | null;
  write_frozen: boolean;
  frozen_since: Date | null;
  cutover: Cutover | null;
  jobs_paused: boolean;
  jobs_resume: PendingResume[];
  updated_at: Date;
}

export interface EventRow {
  id: string;
  scope: string;
  kind: 'auto' | 'manual' | 'shift' | 'drill' | 'pin_back';
  from_region: string | null;
  to_region: string | null;
  steps: number[] | null;
  actor: string;
  reason: string | null;
  forced: boolean;
  epoch: number;
  started_at: Date;
  finished_at: Date | null;
  outcome: 'in_progress' | 'completed' | 'aborted' | 'superseded' | 'failed';
  details: Record<string, unknown>;
}

const REGION_COLUMNS = `scope, name, role, base_url, health_url, replication_lag_url, pause_url, resume_url, queue_depth_url, traffic_weight, active, healthy,
  consecutive_failures, consecutive_successes, last_check_at, last_latency_ms, last_error, health_changed_at,
  replication_lag_seconds, replication_lag_at`;
const CONTROL_COLUMNS = `scope, epoch::float8 AS epoch, lease_holder, lease_expires_at, write_frozen, frozen_since, cutover, jobs_paused, jobs_resume, updated_at`;
export const EVENT_COLUMNS = `id::text AS id, scope, kind, from_region, to_region, steps, actor, reason, forced, epoch::float8 AS epoch,
  started_at, finished_at, outcome, details`;

/** The scope's regions, primary first. */
export async function loadRegions(db: Db, scope: string, forUpdate = false): Promise<RegionRow[]> {
  const { rows } = await db.query<RegionRow>(
    `SELECT ${REGION_COLUMNS} FROM controlroom.regions WHERE scope = $1 ORDER BY role = 'secondary', name${forUpdate ? ' FOR UPDATE' : ''}`,
    [scope]
  );
  return rows;
}

export async function loadControl(db: Db, scope: string, forUpdate = false): Promise<ControlRow> {
  const { rows } = await db.query<ControlRow>(
    `SELECT ${CONTROL_COLUMNS} FROM controlroom.failover_control WHERE scope = $1${forUpdate ? ' FOR UPDATE' : ''}`,
    [scope]
  );
  const row = rows[0];
  if (!row) throw new Error(`no failover_control row for scope ${scope}: regions not configured`);
  return row;
}

export async function loadEvent(db: Db, id: string): Promise<EventRow | null> {
  const { rows } = await db.query<EventRow>(`SELECT ${EVENT_COLUMNS} FROM controlroom.failover_events WHERE id = $1`, [
    id,
  ]);
  return rows[0] ?? null;
}

export const weightsOf = (regions: readonly RegionRow[]): Weights =>
  Object.fromEntries(regions.map((r) => [r.name, r.traffic_weight]));

// ---------------------------------------------------------------------------------------------------
// Lease and fencing

/** What an instance holds: the scope's lease under one epoch (the fencing token). */
export interface Lease {
  scope: string;
  holder: string;
  epoch: number;
}

/** A state change attempted under an epoch that is no longer current (or a lease that expired). */
export class FencedError extends Error {
  constructor(
    readonly lease: Lease,
    readonly current: { epoch: number; holder: string | null; expired: boolean } | null
  ) {
    super(
      `fenced: ${lease.holder} acted under epoch ${lease.epoch} of scope ${lease.scope}, but ` +
        (!current
          ? 'the scope is gone or its epoch moved on'
          : current.epoch === lease.epoch && current.holder === lease.holder
            ? 'its lease expired'
            : `the lease is held by ${current.holder ?? 'nobody'} under epoch ${current.epoch}${current.expired ? ' (expired)' : ''}`)
    );
  }
}

/** Extends the lease while it is still ours and unexpired; false when it was lost. */
export async function renewLease(pool: Pool, lease: Lease, leaseMs: number): Promise<boolean> {
  const { rowCount } = await pool.query(
    `UPDATE controlroom.failover_control SET lease_expires_at = now() + $4 * interval '1 millisecond'
      WHERE scope = $1 AND lease_holder = $2 AND epoch = $3 AND lease_expires_at > now()`,
    [lease.scope, lease.holder, lease.epoch, leaseMs]
  );
  return rowCount === 1;
}

/**
 * Takes the lease when it is free or expired (or, with `takeOwn`, when it is held under our own id: a
 * restarted instance). Every acquisition increments the epoch, so whatever an earlier holder (or an
 * earlier run of this instance) still has in flight is fenced off.
 */
export async function acquireLease(
  pool: Pool,
  scope: string,
  holder: string,
  leaseMs: number,
  takeOwn: boolean
): Promise<Lease | null> {
  return withTransaction(pool, 'READ COMMITTED', async (client) => {
    const before = await client.query<{ epoch: number; lease_holder: string | null; expired: boolean | null }>(
      `SELECT epoch::float8 AS epoch, lease_holder, lease_expires_at <= now() AS expired
         FROM controlroom.failover_control WHERE scope = $1 FOR UPDATE`,
      [scope]
    );
    const current = before.rows[0];
    if (!current) return null;
    const free =
      current.lease_holder === null || current.expired === true || (takeOwn && current.lease_holder === holder);
    if (!free) return null;
    const { rows } = await client.query<{ epoch: number }>(
      `UPDATE controlroom.failover_control
          SET epoch = epoch + 1, lease_holder = $2, lease_expires_at = now() + $4 * interval '1 millisecond', updated_at = now()
        WHERE scope = $1 AND epoch = $3
        RETURNING epoch::float8 AS epoch`,
      [scope, holder, current.epoch, leaseMs]
    );
    const epoch = rows[0]!.epoch;
    await audit(client, {
      actor: SYSTEM_ACTOR,
      action: 'failover.lease_acquired',
      target: `failover_control/${scope}`,
      payload: {
        scope,
        holder,
        epoch,
        previous_holder: current.lease_holder,
        previous_epoch: current.epoch,
        previous_expired: current.expired,
      },
    });
    return { scope, holder, epoch };
  });
}

/** Gives the lease up (graceful stop), so another instance can take over at once. */
export async function releaseLease(pool: Pool, lease: Lease): Promise<void> {
  await pool.query(
    `UPDATE controlroom.failover_control SET lease_expires_at = now()
      WHERE scope = $1 AND lease_holder = $2 AND epoch = $3 AND lease_expires_at > now()`,
    [lease.scope, lease.holder, lease.epoch]
  );
}

/**
 * Runs a state change under the lease: the first statement locks the scope's control row on the condition
 * `epoch = <held> AND lease_holder = <us> AND lease unexpired`, and the transaction aborts (FencedError)
 * when it does not match. The lock makes a takeover wait for this transaction, so a stale instance can
 * never change state after another instance took the lease over.
 */
export async function fenced<T>(
  pool: Pool,
  lease: Lease,
  work: (client: PoolClient, control: ControlRow) => Promise<T>
): Promise<T> {
  return withTransaction(pool, 'READ COMMITTED', async (client) => {
    const { rows } = await client.query<ControlRow>(
      `SELECT ${CONTROL_COLUMNS} FROM controlroom.failover_control
        WHERE scope = $1 AND epoch = $2 AND lease_holder = $3 AND lease_expires_at > now()
        FOR UPDATE`,
      [lease.scope, lease.epoch, lease.holder]
    );
    const control = rows[0];
    if (!control) {
      const now = await client.query<{ epoch: number; lease_holder: string | null; expired: boolean | null }>(
        `SELECT epoch::float8 AS epoch, lease_holder, lease_expires_at <= now() AS expired FROM controlroom.failover_control WHERE scope = $1`,
        [lease.scope]
      );
      const row = now.rows[0];
      throw new FencedError(
        lease,
        row ? { epoch: row.epoch, holder: row.lease_holder, expired: row.expired !== false } : null
      );
    }
    return work(client, control);
  });
}

/** Sets the weights (and optionally the active region) of a scope, conditioned on the held epoch. */
export async function setWeights(client: PoolClient, lease: Lease, weights: Weights, active?: string): Promise<void> {
  const { rowCount } = await client.query(
    `UPDATE controlroom.regions r
        SET traffic_weight = (w.value)::int,
            active = CASE WHEN $4::text IS NULL THEN r.active ELSE r.name = $4::text END,
            updated_at = now()
       FROM jsonb_each_text($2::jsonb) w
      WHERE r.scope = $1 AND r.name = w.key
        AND EXISTS (SELECT 1 FROM controlroom.failover_control c WHERE c.scope = $1 AND c.epoch = $3)`,
    [lease.scope, JSON.stringify(weights), lease.epoch, active ?? null]
  );
  if (rowCount !== Object.keys(weights).length) {
    throw new Error(
      `weights ${JSON.stringify(weights)} do not match the regions of scope ${lease.scope} under epoch ${lease.epoch}`
    );
  }
}

/**
 * Updates the control row (freeze, cutover, paused jobs), conditioned on the held epoch. `jobsPaused`
 * undefined keeps the flag; `owedResumes` are appended to the resume calls still owed.
 */
export async function setControl(
  client: PoolClient,
  lease: Lease,
  change: { writeFrozen: boolean; cutover: Cutover | null; jobsPaused?: boolean; owedResumes?: PendingResume[] }
): Promise<void> {
  const { rowCount } = await client.query(
    `UPDATE controlroom.failover_control
        SET write_frozen = $3,
            frozen_since = CASE WHEN $3 THEN COALESCE(frozen_since, now()) ELSE NULL END,
            cutover = $4::jsonb,
            jobs_paused = COALESCE($5::boolean, jobs_paused),
            jobs_resume = jobs_resume || $6::jsonb,
            updated_at = now()
      WHERE scope = $1 AND epoch = $2`,
    [
      lease.scope,
      lease.epoch,
      change.writeFrozen,
      change.cutover ? JSON.stringify(change.cutover) : null,
      change.jobsPaused ?? null,
      JSON.stringify(change.owedResumes ?? []),
    ]
  );
  if (rowCount !== 1) throw new FencedError(lease, null);
}

export async function finishEvent(
  client: PoolClient,
  id: string,
  outcome: EventRow['outcome'],
  epoch: number,
  details: Record<string, unknown>
): Promise<void> {
  await client.query(
    `UPDATE controlroom.failover_events
        SET outcome = $2, finished_at = now(), epoch = $3, details = details || $4::jsonb
      WHERE id = $1 AND outcome = 'in_progress'`,
    [id, outcome, epoch, JSON.stringify(details)]
  );
}

/** The resume calls a cutover owes once it ends with jobs paused: one per region with a resume endpoint. */
export function owedResumes(eventId: string, regions: readonly RegionRow[]): PendingResume[] {
  const now = new Date().toISOString();
  return regions
    .filter((r) => r.resume_url)
    .map((r) => ({
      event_id: eventId,
      region: r.name,
      url: r.resume_url!,
      attempts: 0,
      next_at: now,
      last_error: null,
    }));
}

// ---------------------------------------------------------------------------------------------------
// Configuration

/**
 * Brings a scope's regions in line with the configuration, at start. Existing regions keep their weights,
 * active flag and health (health is reset when the health URL changed); new ones start at weight 0. When
 * the table was empty, or the configured regions no longer hold a consistent state, the primary becomes
 * active at 100%. Serialised with the lease holder by the control row's lock.
 */
export async function syncRegions(
  pool: Pool,
  scope: string,
  specs: readonly RegionSpec[],
  logger: Logger
): Promise<void> {
  await withTransaction(pool, 'READ COMMITTED', async (client) => {
    await client.query(`INSERT INTO controlroom.failover_control (scope) VALUES ($1) ON CONFLICT (scope) DO NOTHING`, [
      scope,
    ]);
    const control = await loadControl(client, scope, true);
    const existing = await loadRegions(client, scope, true);
    const names = new Set(specs.map((s) => s.name));
    const removed = existing.filter((r) => !names.has(r.name));
    const changes: Record<string, unknown>[] = [];

    if (removed.length > 0 && control.cutover) {
      // The cutover's regions are being reconfigured away: end it and lift the freeze.
      await finishEvent(client, control.cutover.event_id, 'aborted', control.epoch, {
        aborted_because: 'regions reconfigured',
      });
      await client.query(
        `UPDATE controlroom.failover_control
            SET cutover = NULL, write_frozen = false, frozen_since = NULL, jobs_paused = false,
                jobs_resume = jobs_resume || $2::jsonb, updated_at = now()
          WHERE scope = $1`,
        [scope, JSON.stringify(control.jobs_paused ? owedResumes(control.cutover.event_id, existing) : [])]
      );
      changes.push({ cutover_aborted: control.cutover.event_id });
    }
    if (removed.length > 0) {
      await client.query(`DELETE FROM controlroom.regions WHERE scope = $1 AND name = ANY($2::text[])`, [
        scope,
        removed.map((r) => r.name),
      ]);
      changes.push({ removed: removed.map((r) => r.name) });
    }
    for (const spec of specs) {
      const before = existing.find((r) => r.name === spec.name);
      const lagUrl = spec.replication_lag_url ?? null;
      const jobUrls = [spec.pause_url ?? null, spec.resume_url ?? null, spec.queue_depth_url ?? null];
      if (!before) {
        await client.query(
          `INSERT INTO controlroom.regions (scope, name, role, base_url, health_url, replication_lag_url, pause_url, resume_url, queue_depth_url, traffic_weight, active)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, false)`,
          [scope, spec.name, spec.role, spec.base_url, spec.health_url, lagUrl, ...jobUrls]
        );
        changes.push({ added: spec });
        continue;
      }
      const sameJobUrls =
        before.pause_url === jobUrls[0] && before.resume_url === jobUrls[1] && before.queue_depth_url === jobUrls[2];
      if (
        before.role === spec.role &&
        before.base_url === spec.base_url &&
        before.health_url === spec.health_url &&
        before.replication_lag_url === lagUrl &&
        sameJobUrls
      )
        continue;
      const resetHealth = before.health_url !== spec.health_url;
      await client.query(
        `UPDATE controlroom.regions
            SET role = $3, base_url = $4, health_url = $5, replication_lag_url = $6,
                replication_lag_seconds = CASE WHEN $6::text IS NULL THEN NULL ELSE replication_lag_seconds END,
                healthy = CASE WHEN $7 THEN false ELSE healthy END,
                consecutive_failures = CASE WHEN $7 THEN 0 ELSE consecutive_failures END,
                consecutive_successes = CASE WHEN $7 THEN 0 ELSE consecutive_successes END,
                last_check_at = CASE WHEN $7 THEN NULL ELSE last_check_at END,
                last_error = CASE WHEN $7 THEN NULL ELSE last_error END,
                pause_url = $8, resume_url = $9, queue_depth_url = $10,
                updated_at = now()
          WHERE scope = $1 AND name = $2`,
        [scope, spec.name, spec.role, spec.base_url, spec.health_url, lagUrl, resetHealth, ...jobUrls]
      );
      changes.push({ updated: spec.name, health_reset: resetHealth });
    }

    const now = await loadRegions(client, scope);
    const total = now.reduce((sum, r) => sum + r.traffic_weight, 0);
    const active = now.filter((r) => r.active);
    if (now.length > 0 && (total !== 100 || active.length !== 1)) {
      const primary = now.find((r) => r.role === 'primary') ?? now[0]!;
      await client.query(
        `UPDATE controlroom.regions SET active = (name = $2), traffic_weight = CASE WHEN name = $2 THEN 100 ELSE 0 END, updated_at = now()
          WHERE scope = $1`,
        [scope, primary.name]
      );
      changes.push({ routing_reset: { active: primary.name, weight: 100 } });
      if (existing.length > 0)
        logger.warn({ scope, active: primary.name }, 'regions reconfigured: routing reset to the primary at 100%');
    }
    if (changes.length > 0) {
      await audit(client, {
        actor: SYSTEM_ACTOR,
        action: 'failover.regions_configured',
        target: `regions/${scope}`,
        payload: { scope, changes },
      });
    }
  });
}
