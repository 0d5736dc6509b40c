import { FailoverBody, ReasonBody, ShiftBody, type PinBackAdvice, type Routing } from '@controlroom/contract';
import express, { type Request, type Router } from 'express';
import type { z } from 'zod';
import { actorOf, requireAction } from '../../core/access.ts';
import type { Pool } from '../../core/db.ts';
import { jsonBody, parseInput } from '../../core/http.ts';
import { UserError } from '../../core/errors.ts';
import type { FailoverEngine } from './engine.ts';
import { requestAbort, requestFailover, requestShift, stepsProblem, waitForEvent, type Requester } from './requests.ts';
import type { FailoverSettings } from './settings.ts';
import { EVENT_COLUMNS, loadControl, loadRegions, type EventRow, type RegionRow } from './store.ts';

/** What the TMS router follows: one indexed query. */
export async function loadRouting(pool: Pool, scope: string): Promise<Routing> {
  const { rows } = await pool.query<{
    epoch: number;
    write_frozen: boolean;
    jobs_paused: boolean;
    regions: Routing['regions'] | null;
  }>(
    `SELECT c.epoch::float8 AS epoch, c.write_frozen, c.jobs_paused,
            json_agg(json_build_object('name', r.name, 'base_url', r.base_url, 'weight', r.traffic_weight,
                                       'active', r.active, 'healthy', r.healthy)
                     ORDER BY r.role = 'secondary', r.name) FILTER (WHERE r.name IS NOT NULL) AS regions
       FROM controlroom.failover_control c
       LEFT JOIN controlroom.regions r ON r.scope = c.scope
      WHERE c.scope = $1
      GROUP BY c.scope, c.epoch, c.write_frozen, c.jobs_paused`,
    [scope]
  );
  const row = rows[0];
  if (!row) throw new UserError(503, `regions are not configured (scope ${scope})`);
  const regions = row.regions ?? [];
  return {
    epoch: row.epoch,
    write_frozen: row.write_frozen,
    jobs_paused: row.jobs_paused,
    active: regions.find((r) => r.active)?.name ?? null,
    regions,
  };
}

// The contract's body, and the service's own rule for the steps (they increase and end at 100).
const failoverBody = FailoverBody.superRefine((body, ctx) => {
  const problem = body.steps ? stepsProblem(body.steps) : null;
  if (problem) ctx.addIssue({ code: 'custom', path: ['steps'], message: problem });
});

const parse = <T>(schema: z.ZodType<T>, body: unknown): T => parseInput(schema, body ?? {});

const requester = (req: Request): Requester => ({
  actor: actorOf(req.caller!),
  role: req.caller!.role,
  ipAddress: req.ip ?? null,
  userAgent: req.header('user-agent') ?? null,
});

/**
 * Mounted under /api:
 * - GET  /regions/routing       for the TMS router (no Grafana: it is a status)
 * - GET  /regions               regions, health history, control state, events, drills (Viewer)
 * - POST /regions/failover      {target, steps?, force?, reason} stepped failover (Admin)
 * - POST /regions/shift         {weights, force?, reason} traffic shift (Admin)
 * - POST /regions/cutover/abort {reason} (Admin)
 * - POST /regions/pin-back      {reason} all traffic back to the active region (Admin)
 */
export function regionsApiRouter(pool: Pool, settings: FailoverSettings, engine?: FailoverEngine): Router {
  const router = express.Router();
  const { scope } = settings;
  const json = jsonBody(16 * 1024);

  // Concurrent router polls share one query.
  let inflight: Promise<Routing> | null = null;
  router.get('/regions/routing', async (_req, res) => {
    inflight ??= loadRouting(pool, scope).finally(() => {
      inflight = null;
    });
    const routing = await inflight;
    res.set('cache-control', 'no-store').json(routing satisfies Routing);
  });

  router.get('/regions', requireAction('read'), async (req, res) => {
    const raw =
      req.query.checks === undefined
        ? 50
        : typeof req.query.checks === 'string' && /^\d{1,4}$/.test(req.query.checks)
          ? Number(req.query.checks)
          : Number.NaN;
    if (!Number.isInteger(raw) || raw < 1 || raw > 1000)
      throw new UserError(400, 'invalid request: checks must be a whole number from 1 to 1000');
    const [control, regions, checks, events, drills] = await Promise.all([
      loadControl(pool, scope),
      loadRegions(pool, scope),
      pool.query<{
        region: string;
        at: Date;
        ok: boolean;
        latency_ms: number | null;
        status_code: number | null;
        error: string | null;
      }>(
        `SELECT r.name AS region, k.at, k.ok, k.latency_ms, k.status_code, k.error
           FROM controlroom.regions r
           CROSS JOIN LATERAL (SELECT at, ok, latency_ms, status_code, error FROM controlroom.region_checks c
                                WHERE c.scope = r.scope AND c.region = r.name ORDER BY at DESC LIMIT $2) k
          WHERE r.scope = $1
          ORDER BY r.name, k.at DESC`,
        [scope, raw]
      ),
      pool.query<EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM controlroom.failover_events WHERE scope = $1 ORDER BY id DESC LIMIT 20`,
        [scope]
      ),
      pool.query(
        `SELECT id::text AS id, kind, scenario, started_at, finished_at, outcome, rto_seconds, rpo_seconds, rto_target_seconds, rpo_target_seconds,
                rto_met, rpo_met, writes_acknowledged, writes_lost, actor, event_id::text AS event_id, details->>'error' AS error,
                details->>'failure' AS failure
           FROM controlroom.failover_drills ORDER BY id DESC LIMIT 10`
      ),
    ]);
    res.json({
      scope,
      control: {
        epoch: control.epoch,
        lease_holder: control.lease_holder,
        lease_expires_at: control.lease_expires_at,
        write_frozen: control.write_frozen,
        frozen_since: control.frozen_since,
        jobs_paused: control.jobs_paused,
        resume_calls_owed: control.jobs_resume,
        cutover: control.cutover,
        this_instance: { holder: settings.holder, leader: engine?.lease?.epoch === control.epoch },
      },
      regions: regions.map((r) => ({
        ...r,
        checks: checks.rows.filter((c) => c.region === r.name).map(({ region: _r, ...c }) => c),
      })),
      pin_back: pinBackAdvice(regions),
      events: events.rows,
      drills: drills.rows,
      settings: {
        check_interval_seconds: settings.checkIntervalMs / 1000,
        check_timeout_ms: settings.checkTimeoutMs,
        unhealthy_after: settings.unhealthyAfter,
        healthy_after: settings.healthyAfter,
        auto_failover: settings.auto,
        step_seconds: settings.stepMs / 1000,
        lease_seconds: settings.leaseMs / 1000,
        default_steps: settings.defaultSteps,
        drain_timeout_seconds: settings.drainJobsTimeoutMs / 1000,
        rto_target_seconds: settings.rtoTargetSeconds,
        rpo_target_seconds: settings.rpoTargetSeconds,
        integrity_settle_seconds: settings.integrity.settleMs / 1000,
      },
    });
  });

  router.post('/regions/failover', requireAction('failoverWrite'), json, async (req, res) => {
    const body = parse(failoverBody, req.body);
    const { event, cutover } = await requestFailover(
      pool,
      scope,
      settings.defaultSteps,
      body,
      requester(req),
      'manual',
      { integrity: settings.integrity.enabled }
    );
    engine?.wake();
    res.status(202).json({ event: event, plan: cutover.plan, step_seconds: settings.stepMs / 1000 });
  });

  router.post('/regions/shift', requireAction('failoverWrite'), json, async (req, res) => {
    const body = parse(ShiftBody, req.body);
    const { event } = await requestShift(pool, scope, body, requester(req));
    engine?.wake();
    // The lease holder applies a shift within a poll; answer with the outcome when it is that quick.
    const done = await waitForEvent(pool, event.id, 5_000);
    res.status(done.outcome === 'in_progress' ? 202 : 200).json({ event: done });
  });

  router.post('/regions/cutover/abort', requireAction('failoverWrite'), json, async (req, res) => {
    const body = parse(ReasonBody, req.body);
    const id = await requestAbort(pool, scope, body.reason, requester(req));
    engine?.wake();
    const done = await waitForEvent(pool, id, 5_000);
    res.status(done.outcome === 'in_progress' ? 202 : 200).json({ event: done });
  });

  router.post('/regions/pin-back', requireAction('failoverWrite'), json, async (req, res) => {
    const body = parse(ReasonBody, req.body);
    const regions = await loadRegions(pool, scope);
    const active = regions.find((r) => r.active);
    if (!active || regions.every((r) => r.active || r.traffic_weight === 0)) {
      throw new UserError(
        409,
        `nothing to pin back: ${active?.name ?? 'the active region'} already takes all the traffic`
      );
    }
    const weights = Object.fromEntries(regions.map((r) => [r.name, r.active ? 100 : 0]));
    const { event } = await requestShift(pool, scope, { weights, reason: body.reason, pinBack: true }, requester(req));
    engine?.wake();
    const done = await waitForEvent(pool, event.id, 5_000);
    res.status(done.outcome === 'in_progress' ? 202 : 200).json({ event: done });
  });

  return router;
}

/**
 * What the Failover page shows about pin-back: the standby carries traffic while unhealthy, and the
 * active region is healthy. With automatic failover on the engine does it at the next health round;
 * otherwise an Admin does it with POST /api/regions/pin-back.
 */
export function pinBackAdvice(regions: readonly RegionRow[]): PinBackAdvice {
  const active = regions.find((r) => r.active);
  const standby = regions.find((r) => !r.active && r.traffic_weight > 0 && !r.healthy);
  if (!active || !standby || !active.healthy) return { needed: false, from: null, to: null, weight: 0 };
  return { needed: true, from: standby.name, to: active.name, weight: standby.traffic_weight };
}
