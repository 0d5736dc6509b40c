/**
 * Game days (Phase 6 runbook): scripted failures against the local simulated regions, in their own scope
 * like a drill (live routing is never touched), through the same engine as production, recorded in
 * controlroom.failover_drills (kind 'gameday') and audited as failover.gameday.
 *
 * - primary-db-loss: the primary's database is lost while a client writes. The health checks must see it
 *   and automatic failover move writes to the secondary. RTO: from the loss to the first write the new
 *   primary acknowledged; RPO: acknowledged writes the new primary lacks, in seconds of data. Passed when
 *   both are within the targets.
 * - upstream-degraded: an upstream dependency both regions share (the plan's "OpenAI degraded") slows the
 *   primary's answers and stalls its agent jobs, but the region itself still works. Control Room must not
 *   fail over (it would not help and risks data), writes must keep flowing, and the slowdown must show in
 *   the read-latency histogram. RTO and RPO do not apply (nothing is recovered); no write may be lost.
 */
import { audit } from '../../core/audit.ts';
import {
  recordExercise,
  recordFailedExercise,
  sleep,
  until,
  withSimulatedRegions,
  type RunDrillOptions,
} from './drill.ts';
import { CHECK_LATENCY_BUCKETS } from './health.ts';
import { judgeObjectives, type Objectives } from './integrity.ts';
import { loadRegions } from './store.ts';

export const GAMEDAY_SCENARIOS = ['primary-db-loss', 'upstream-degraded'] as const;
export type GameDayScenario = (typeof GAMEDAY_SCENARIOS)[number];

export interface GameDayOptions {
  /** Replication lag of the secondary (default 150 ms). */
  replicationLagMs?: number;
  /** Writes before the failure (default 500 ms). */
  warmupMs?: number;
  /** How long the degraded upstream is watched (default 2 s). */
  observeMs?: number;
  /** Extra latency of the degraded upstream (default 250 ms, over the plan's 150 ms p95). */
  degradedLatencyMs?: number;
  actor?: string;
  timeoutMs?: number;
}

export interface GameDayResult {
  id: string;
  kind: 'gameday';
  scenario: GameDayScenario;
  scope: string;
  outcome: 'passed' | 'failed';
  started_at: string;
  finished_at: string;
  rto_seconds: number | null;
  rpo_seconds: number | null;
  objectives: Objectives;
  writes_acknowledged: number;
  writes_lost: number;
  /** What the scenario expects of Control Room, each met or not. */
  expectations: Array<{ what: string; met: boolean; detail: string }>;
  details: Record<string, unknown>;
}

export async function runGameDay(
  args: Omit<RunDrillOptions, 'options'> & { scenario: GameDayScenario; options?: GameDayOptions }
): Promise<GameDayResult> {
  const { pool, config, logger, scenario } = args;
  if (!GAMEDAY_SCENARIOS.includes(scenario))
    throw new Error(`unknown game day scenario "${scenario}" (known: ${GAMEDAY_SCENARIOS.join(', ')})`);
  const o = {
    replicationLagMs: args.options?.replicationLagMs ?? 150,
    warmupMs: args.options?.warmupMs ?? 500,
    observeMs: args.options?.observeMs ?? 2_000,
    degradedLatencyMs: args.options?.degradedLatencyMs ?? 250,
    actor: args.options?.actor ?? 'controlroom:gameday',
    timeoutMs: args.options?.timeoutMs ?? 30_000,
  };
  const log = logger.child({ component: 'failover-gameday', scenario });
  const startedAt = new Date();
  const { id, scope } = await recordExercise(pool, config, {
    kind: 'gameday',
    scenario,
    actor: o.actor,
    startedAt,
    options: o,
  });
  log.info({ gameday: id, scope }, 'game day starting');

  try {
    return await withSimulatedRegions(
      {
        pool,
        config,
        logger,
        log,
        scope,
        prefix: 'gameday',
        replicationLagMs: o.replicationLagMs,
        writeIntervalMs: 5,
        warmupMs: o.warmupMs,
        timeoutMs: o.timeoutMs,
        // Automatic failover on, production thresholds (3 failures in a row) at a fast check interval.
        settings: { unhealthyAfter: 3, healthyAfter: 2, auto: true },
      },
      async ({ primary, secondary, client, settings, left }) => {
        const expectations: GameDayResult['expectations'] = [];
        let rto: number | null = null;
        let rpo: number | null = null;
        let lostCount = 0;
        const details: Record<string, unknown> = { options: o };

        if (scenario === 'primary-db-loss') {
          primary.lose();
          const lossAt = primary.lostAt!;
          const firstOnTarget = await until(
            () => client.acks.find((a) => a.region === secondary.name),
            left(),
            'the first write on the secondary'
          );
          await sleep(200);
          await client.stop();
          const fromPrimary = client.acks.filter((a) => a.region === primary.name);
          const lost = fromPrimary.filter((a) => !secondary.writes.has(a.id));
          const kept = fromPrimary.filter((a) => secondary.writes.has(a.id));
          const newestLost = lost.reduce((m, a) => Math.max(m, a.at), 0);
          const newestKept = kept.reduce((m, a) => Math.max(m, a.at), 0);
          lostCount = lost.length;
          rto = (firstOnTarget.at - lossAt) / 1000;
          rpo = lost.length === 0 ? 0 : (newestLost - newestKept) / 1000;
          const events = await pool.query<{ id: string; kind: string; to_region: string }>(
            `SELECT id::text AS id, kind, to_region FROM controlroom.failover_events WHERE scope = $1 ORDER BY id`,
            [scope]
          );
          const auto = events.rows.find((e) => e.kind === 'auto' && e.to_region === secondary.name);
          expectations.push({
            what: 'automatic failover to the secondary',
            met: Boolean(auto),
            detail: auto ? `failover_events ${auto.id}` : 'no automatic failover happened',
          });
          details.loss_at = new Date(lossAt).toISOString();
          details.failover_event_id = auto?.id ?? null;
          details.writes_refused_during_outage = client.failures.filter((f) => f.at >= lossAt).length;
          details.lost_write_ids = lost.slice(0, 50).map((a) => a.id);
        } else {
          const degradedAt = Date.now();
          primary.healthDelayMs = o.degradedLatencyMs;
          primary.healthStatus = 'degraded: upstream openai slow';
          primary.jobs.mode = 'stuck';
          primary.jobs.enqueue(25);
          const acksBefore = client.acks.length;
          await sleep(o.observeMs);
          await client.stop();
          const events = await pool.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM controlroom.failover_events WHERE scope = $1`,
            [scope]
          );
          const region = (await loadRegions(pool, scope)).find((r) => r.name === primary.name)!;
          const lat = await pool.query<{ buckets: string[]; count: string }>(
            `SELECT check_latency_buckets AS buckets, check_latency_count AS count FROM controlroom.regions WHERE scope = $1 AND name = $2`,
            [scope, primary.name]
          );
          const writesDuring = client.acks.filter((a) => a.at >= degradedAt).length;
          const slowChecks =
            Number(lat.rows[0]!.count) - Number(lat.rows[0]!.buckets[CHECK_LATENCY_BUCKETS.indexOf(0.15)] ?? 0);
          expectations.push(
            {
              what: 'no failover (the upstream is shared; moving regions would not help)',
              met: events.rows[0]!.n === 0,
              detail: `${events.rows[0]!.n} failover events`,
            },
            {
              what: 'the primary stays healthy and active',
              met: region.healthy && region.active,
              detail: `healthy ${region.healthy}, active ${region.active}`,
            },
            {
              what: 'writes keep flowing',
              met: writesDuring > 0 && client.errors === 0,
              detail: `${writesDuring} writes acknowledged while degraded, ${client.errors} refused`,
            },
            {
              what: 'the slowdown shows in the read-latency histogram',
              met: slowChecks > 0,
              detail: `${slowChecks} health checks over 150 ms`,
            }
          );
          rpo = 0;
          details.writes_while_degraded = writesDuring;
          details.writes_before = acksBefore;
          details.stalled_jobs = primary.jobs.depth;
        }

        const objectives = judgeObjectives(rto, rpo, settings);
        if (scenario === 'primary-db-loss') {
          expectations.push(
            {
              what: `RTO within ${settings.rtoTargetSeconds} s`,
              met: objectives.rto_met === true,
              detail: `RTO ${rto?.toFixed(3)} s`,
            },
            {
              what: `RPO within ${settings.rpoTargetSeconds} s`,
              met: objectives.rpo_met === true,
              detail: `RPO ${rpo?.toFixed(3)} s (${lostCount} writes lost)`,
            }
          );
        }
        const outcome: GameDayResult['outcome'] = expectations.every((e) => e.met) ? 'passed' : 'failed';
        const finishedAt = new Date();
        Object.assign(details, {
          objectives,
          expectations,
          writes_acknowledged: client.acks.length,
          write_errors: client.errors,
        });
        const failed = expectations.filter((e) => !e.met);
        if (failed.length) details.failure = failed.map((e) => `${e.what}: ${e.detail}`).join('; ');
        await pool.query(
          `UPDATE controlroom.failover_drills
          SET finished_at = $2, outcome = $3, rto_seconds = $4, rpo_seconds = $5, writes_acknowledged = $6, writes_lost = $7, details = $8,
              rto_met = $9, rpo_met = $10, event_id = $11
        WHERE id = $1`,
          [
            id,
            finishedAt,
            outcome,
            rto,
            rpo,
            client.acks.length,
            lostCount,
            JSON.stringify(details),
            objectives.rto_met,
            objectives.rpo_met,
            details.failover_event_id ?? null,
          ]
        );
        await audit(pool, {
          actor: o.actor,
          action: 'failover.gameday',
          target: `failover_drills/${id}`,
          payload: {
            scope,
            scenario,
            outcome,
            rto_seconds: rto,
            rpo_seconds: rpo,
            objectives,
            expectations,
            writes_lost: lostCount,
          },
        });
        log.info({ gameday: id, outcome, rto_seconds: rto, rpo_seconds: rpo }, 'game day finished');
        return {
          id,
          kind: 'gameday',
          scenario,
          scope,
          outcome,
          started_at: startedAt.toISOString(),
          finished_at: finishedAt.toISOString(),
          rto_seconds: rto,
          rpo_seconds: rpo,
          objectives,
          writes_acknowledged: client.acks.length,
          writes_lost: lostCount,
          expectations,
          details,
        };
      }
    );
  } catch (error) {
    await recordFailedExercise(
      pool,
      { id, actor: o.actor, action: 'failover.gameday', payload: { scope, scenario } },
      error
    );
    throw error;
  }
}
