/**
 * Requests for a failover, a traffic shift or an abort: validated against the safety rules and stored
 * as the scope's cutover (with its failover_events row), in one transaction under the control row's
 * lock. The lease holder's engine then carries them out, step by step and fenced by its epoch. The HTTP
 * API and the drill both come through here, so a drill exercises exactly the production path.
 */
import { audit } from '../../core/audit.ts';
import { withTransaction, type Pool, type PoolClient } from '../../core/db.ts';
import { UserError } from '../../core/errors.ts';
import { ERROR_RATE_WINDOW_SECONDS, readIntegrityFigures } from './integrity.ts';
import {
  loadControl,
  loadEvent,
  loadRegions,
  type Cutover,
  type EventRow,
  type IntegrityFigures,
  type RegionRow,
  type Weights,
  weightsOf,
} from './store.ts';

export interface Requester {
  /** Audit actor: "grafana:<login>", or "controlroom:drill". */
  actor: string;
  role?: string | undefined;
  ipAddress?: string | null | undefined;
  userAgent?: string | null | undefined;
}

export interface FailoverRequest {
  target: string;
  steps?: number[] | undefined;
  force?: boolean | undefined;
  reason: string;
}

export interface ShiftRequest {
  weights: Record<string, number>;
  force?: boolean | undefined;
  reason: string;
  /** An Admin pinning traffic back to the active region (audited as failover.pin_back_requested). */
  pinBack?: boolean | undefined;
}

/** The TMS figures just before a cutover: counts now, the API error rate over the 5 minutes before. */
export async function integrityBefore(client: PoolClient): Promise<IntegrityFigures> {
  const now = new Date();
  return readIntegrityFigures(client, { from: new Date(now.getTime() - ERROR_RATE_WINDOW_SECONDS * 1000), to: now });
}

/** Null when the steps are usable: whole percentages, strictly increasing, ending at 100. */
export function stepsProblem(steps: readonly number[]): string | null {
  if (steps.length === 0) return 'give at least one step';
  for (const [i, s] of steps.entries()) {
    if (!Number.isInteger(s) || s < 1 || s > 100)
      return `step ${i + 1} (${s}) must be a whole percentage from 1 to 100`;
    if (i > 0 && s <= steps[i - 1]!) return `steps must increase (${steps[i - 1]} then ${s})`;
  }
  if (steps[steps.length - 1] !== 100) return `the last step must be 100 (got ${steps[steps.length - 1]})`;
  return null;
}

/** The weights of both regions at each step of moving traffic (and the write role) to `target`. */
export function failoverPlan(
  regions: readonly RegionRow[],
  target: string,
  steps: readonly number[]
): { steps: number[]; plan: Weights[] } {
  const current = regions.find((r) => r.name === target)?.traffic_weight ?? 0;
  const effective = steps.filter((s) => s > current);
  if (effective[effective.length - 1] !== 100) effective.push(100);
  const plan = effective.map((s) => {
    const others = regions.filter((r) => r.name !== target);
    // Two regions: the rest of the traffic stays on the other one.
    const weights: Weights = { [target]: s };
    others.forEach((r, i) => (weights[r.name] = i === 0 ? 100 - s : 0));
    return weights;
  });
  return { steps: effective, plan };
}

const describeHealth = (r: RegionRow) =>
  r.last_check_at === null
    ? `${r.name} has not been checked yet`
    : `${r.name} is unhealthy (${r.consecutive_failures} failed health checks in a row${r.last_error ? `; last error: ${r.last_error}` : ''})`;

const inProgress = (c: Cutover) =>
  `a cutover is already in progress (event ${c.event_id}: ${c.kind === 'shift' ? 'traffic shift' : `${c.kind} failover ${c.from} → ${c.to}`}, ` +
  `step ${c.applied} of ${c.plan.length}${c.phase === 'draining' ? ', writes frozen' : ''}); wait for it to finish or abort it with POST /api/regions/cutover/abort`;

async function insertEvent(
  client: PoolClient,
  e: {
    scope: string;
    kind: EventRow['kind'];
    from: string;
    to: string | null;
    steps: number[] | null;
    actor: string;
    reason: string;
    forced: boolean;
    epoch: number;
    details: Record<string, unknown>;
  }
): Promise<string> {
  try {
    const { rows } = await client.query<{ id: string }>(
      `INSERT INTO controlroom.failover_events (scope, kind, from_region, to_region, steps, actor, reason, forced, epoch, details)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id::text AS id`,
      [e.scope, e.kind, e.from, e.to, e.steps, e.actor, e.reason, e.forced, e.epoch, JSON.stringify(e.details)]
    );
    return rows[0]!.id;
  } catch (error) {
    if ((error as { code?: string }).code === '23505')
      throw new UserError(409, 'a cutover is already in progress; wait for it to finish or abort it');
    throw error;
  }
}

const nowIso = () => new Date().toISOString();

/** A cutover as requested: nothing applied yet, the first step due now, writes not frozen, no abort. */
function newCutover(
  request: Omit<Cutover, 'applied' | 'next_at' | 'phase' | 'frozen_at' | 'requested_at' | 'abort'>
): Cutover {
  const now = nowIso();
  return { ...request, applied: 0, next_at: now, phase: 'shifting', frozen_at: null, requested_at: now, abort: null };
}

async function saveCutover(client: PoolClient, scope: string, cutover: Cutover): Promise<void> {
  await client.query(
    `UPDATE controlroom.failover_control SET cutover = $2::jsonb, updated_at = now() WHERE scope = $1`,
    [scope, JSON.stringify(cutover)]
  );
}

/** Manual (or drill) failover: move traffic to `target` in steps, then the write role under a write freeze. */
export async function requestFailover(
  pool: Pool,
  scope: string,
  defaultSteps: readonly number[],
  input: FailoverRequest,
  who: Requester,
  kind: 'manual' | 'drill' = 'manual',
  options: { integrity?: boolean } = {}
): Promise<{ event: EventRow; cutover: Cutover }> {
  const steps = input.steps ?? [...defaultSteps];
  const problem = stepsProblem(steps);
  if (problem) throw new UserError(400, `invalid request: steps: ${problem}`);
  const stored = await withTransaction(pool, 'READ COMMITTED', async (client) => {
    const control = await loadControl(client, scope, true);
    if (control.cutover) throw new UserError(409, inProgress(control.cutover));
    const regions = await loadRegions(client, scope);
    const target = regions.find((r) => r.name === input.target);
    if (!target)
      throw new UserError(
        400,
        `invalid request: target: no region named "${input.target}" (regions: ${regions.map((r) => r.name).join(', ')})`
      );
    if (target.active) throw new UserError(409, `target: ${target.name} is already the active region`);
    const source = regions.find((r) => r.active);
    if (!source) throw new Error(`scope ${scope} has no active region`);
    const forced = input.force === true;
    if (!target.healthy && !forced) {
      throw new UserError(
        409,
        `refusing to fail over to ${target.name}: ${describeHealth(target)}. An Admin can override with "force": true and a reason`
      );
    }
    const { steps: effective, plan } = failoverPlan(regions, target.name, steps);
    const before = options.integrity ? await integrityBefore(client) : null;
    const details = {
      ...(before ? { integrity: { status: 'waiting', before } } : {}),
      requested_steps: steps,
      initial_weights: weightsOf(regions),
      target_health: {
        healthy: target.healthy,
        consecutive_failures: target.consecutive_failures,
        last_error: target.last_error,
      },
      source_health: { healthy: source.healthy, consecutive_failures: source.consecutive_failures },
      requested_by_role: who.role ?? null,
      timeline: [{ at: nowIso(), what: 'requested', by: who.actor }],
    };
    const eventId = await insertEvent(client, {
      scope,
      kind,
      from: source.name,
      to: target.name,
      steps: effective,
      actor: who.actor,
      reason: input.reason,
      forced,
      epoch: control.epoch,
      details,
    });
    const cutover = newCutover({
      event_id: eventId,
      kind,
      from: source.name,
      to: target.name,
      moves_active: true,
      steps: effective,
      plan,
      initial_weights: weightsOf(regions),
      forced,
      reason: input.reason,
      actor: who.actor,
    });
    cutover.integrity_before = before;
    await saveCutover(client, scope, cutover);
    const meta = { ipAddress: who.ipAddress ?? null, userAgent: who.userAgent ?? null };
    await audit(client, {
      actor: who.actor,
      action: 'failover.requested',
      target: `failover_events/${eventId}`,
      payload: {
        scope,
        kind,
        from: source.name,
        to: target.name,
        steps: effective,
        forced,
        reason: input.reason,
        role: who.role ?? null,
        epoch: control.epoch,
      },
      ...meta,
    });
    if (forced && !target.healthy) {
      await audit(client, {
        actor: who.actor,
        action: 'failover.safety_override',
        target: `failover_events/${eventId}`,
        payload: {
          scope,
          rule: 'target must be healthy',
          region: target.name,
          health: describeHealth(target),
          reason: input.reason,
          role: who.role ?? null,
        },
        ...meta,
      });
    }
    return { eventId, cutover };
  });
  return { event: (await loadEvent(pool, stored.eventId))!, cutover: stored.cutover };
}

/** A traffic shift: new weights in one step; the write role stays where it is. */
export async function requestShift(
  pool: Pool,
  scope: string,
  input: ShiftRequest,
  who: Requester
): Promise<{ event: EventRow; cutover: Cutover }> {
  const stored = await withTransaction(pool, 'READ COMMITTED', async (client) => {
    const control = await loadControl(client, scope, true);
    if (control.cutover) throw new UserError(409, inProgress(control.cutover));
    const regions = await loadRegions(client, scope);
    const known = new Set(regions.map((r) => r.name));
    for (const name of Object.keys(input.weights)) {
      if (!known.has(name))
        throw new UserError(
          400,
          `invalid request: weights.${name}: no region named "${name}" (regions: ${[...known].join(', ')})`
        );
    }
    const given = Object.keys(input.weights);
    const weights: Weights = {};
    if (given.length === regions.length - 1) {
      // Name one region; the other takes the rest.
      const rest = 100 - given.reduce((sum, n) => sum + input.weights[n]!, 0);
      for (const r of regions) weights[r.name] = input.weights[r.name] ?? rest;
    } else if (given.length === regions.length) {
      Object.assign(weights, input.weights);
    } else {
      throw new UserError(
        400,
        `invalid request: weights: give the weight of one region or of every region (${[...known].join(', ')})`
      );
    }
    const total = Object.values(weights).reduce((a, b) => a + b, 0);
    if (Object.values(weights).every((w) => w === 0)) {
      throw new UserError(
        400,
        'invalid request: weights: never all regions at 0: the TMS would have nowhere to send traffic'
      );
    }
    if (total !== 100 || Object.values(weights).some((w) => w < 0 || w > 100)) {
      throw new UserError(
        400,
        `invalid request: weights: must add up to 100, each from 0 to 100 (got ${JSON.stringify(weights)})`
      );
    }
    const active = regions.find((r) => r.active)!;
    if (weights[active.name] === 0) {
      throw new UserError(
        409,
        `weights.${active.name}: ${active.name} is the active (write) region and must keep some traffic; move the write role with POST /api/regions/failover`
      );
    }
    const current = weightsOf(regions);
    if (regions.every((r) => weights[r.name] === current[r.name]))
      throw new UserError(409, `nothing to change: the weights are already ${JSON.stringify(current)}`);
    const forced = input.force === true;
    const sick = regions.filter((r) => weights[r.name]! > r.traffic_weight && !r.healthy);
    if (sick.length > 0 && !forced) {
      throw new UserError(
        409,
        `refusing to shift traffic to ${sick.map((r) => r.name).join(', ')}: ${sick.map(describeHealth).join('; ')}. An Admin can override with "force": true and a reason`
      );
    }
    const eventId = await insertEvent(client, {
      scope,
      kind: 'shift',
      from: active.name,
      to: null,
      steps: null,
      actor: who.actor,
      reason: input.reason,
      forced,
      epoch: control.epoch,
      details: {
        initial_weights: current,
        weights,
        requested_by_role: who.role ?? null,
        ...(input.pinBack ? { pin_back: true } : {}),
        timeline: [{ at: nowIso(), what: 'requested', by: who.actor }],
      },
    });
    const cutover = newCutover({
      event_id: eventId,
      kind: 'shift',
      from: active.name,
      to: null,
      moves_active: false,
      steps: null,
      plan: [weights],
      initial_weights: current,
      forced,
      reason: input.reason,
      actor: who.actor,
    });
    await saveCutover(client, scope, cutover);
    const meta = { ipAddress: who.ipAddress ?? null, userAgent: who.userAgent ?? null };
    await audit(client, {
      actor: who.actor,
      action: input.pinBack ? 'failover.pin_back_requested' : 'failover.shift_requested',
      target: `failover_events/${eventId}`,
      payload: {
        scope,
        from_weights: current,
        weights,
        forced,
        reason: input.reason,
        role: who.role ?? null,
        epoch: control.epoch,
      },
      ...meta,
    });
    if (forced && sick.length > 0) {
      await audit(client, {
        actor: who.actor,
        action: 'failover.safety_override',
        target: `failover_events/${eventId}`,
        payload: {
          scope,
          rule: 'no traffic shift to an unhealthy region',
          regions: sick.map((r) => r.name),
          health: sick.map(describeHealth),
          reason: input.reason,
          role: who.role ?? null,
        },
        ...meta,
      });
    }
    return { eventId, cutover };
  });
  return { event: (await loadEvent(pool, stored.eventId))!, cutover: stored.cutover };
}

/** Asks the lease holder to abort the cutover in progress: weights back to where they were, writes unfrozen. */
export async function requestAbort(pool: Pool, scope: string, reason: string, who: Requester): Promise<string> {
  return withTransaction(pool, 'READ COMMITTED', async (client) => {
    const control = await loadControl(client, scope, true);
    const cutover = control.cutover;
    if (!cutover) throw new UserError(409, 'no cutover in progress');
    if (cutover.abort)
      throw new UserError(409, `abort of event ${cutover.event_id} already requested by ${cutover.abort.actor}`);
    const abort = {
      actor: who.actor,
      reason,
      requested_at: nowIso(),
      ip_address: who.ipAddress ?? null,
      user_agent: who.userAgent ?? null,
    };
    await saveCutover(client, scope, { ...cutover, abort });
    await audit(client, {
      actor: who.actor,
      action: 'failover.abort_requested',
      target: `failover_events/${cutover.event_id}`,
      payload: {
        scope,
        reason,
        role: who.role ?? null,
        step: cutover.applied,
        of: cutover.plan.length,
        phase: cutover.phase,
      },
      ipAddress: who.ipAddress ?? null,
      userAgent: who.userAgent ?? null,
    });
    return cutover.event_id;
  });
}

/** Polls the event until it has finished, or returns it unfinished after the timeout. */
export async function waitForEvent(pool: Pool, id: string, timeoutMs: number): Promise<EventRow> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const event = await loadEvent(pool, id);
    if (!event) throw new Error(`no failover event ${id}`);
    if (event.outcome !== 'in_progress' || Date.now() >= deadline) return event;
    await new Promise((r) => setTimeout(r, 50));
  }
}
