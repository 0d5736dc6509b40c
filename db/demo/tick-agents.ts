import type { PoolClient } from '../../core/db.ts';
import type { DemoTenant } from './profiles.ts';
import { weightedPicker, type Rng } from './random.ts';
import { activeIncidents, diurnalFactor, hasIncident, type Incident } from './schedule.ts';
import { newAgentTaskBatch } from './sql.ts';
import type { TickCounts } from './summary.ts';

/**
 * The agent task queue as a small worker pool. Tasks arrive with API traffic, wait for a free worker, run
 * for a function-typical time and finish. Normally workers have ~2x headroom so the queue drains within
 * seconds; during the agent-failures incident the carrier-docs provider hangs, sync_carrier_docs holds its
 * worker for ~60 s and then often fails, the pool saturates and the queue backs up on its own. A task's
 * fate is decided by the moment it started: a call made while the provider was down stays hung even if
 * the provider recovers meanwhile, so the backlog clears a minute or so after the incident, not at once.
 */

export const AGENT_FUNCTIONS = [
  { name: 'send_quote_email', weight: 40, runtimeSeconds: 1.5 },
  { name: 'sync_carrier_docs', weight: 25, runtimeSeconds: 4 },
  { name: 'reprice_lanes', weight: 20, runtimeSeconds: 5 },
  { name: 'notify_ops', weight: 15, runtimeSeconds: 1 },
] as const;
export type AgentFunction = (typeof AGENT_FUNCTIONS)[number]['name'];

const TASKS_PER_API_CALL = 0.05;
/** Worker slots per expected arrival per second: about twice the normal mean runtime of ~2.7 s. */
const WORKERS_PER_ARRIVAL = 6;
const MIN_WORKERS = 3;
const TYPICAL_RUNTIME_SECONDS = 3;
export const NORMAL_FAILURE_RATE = 0.01;
export const INCIDENT_SYNC_FAILURE_RATE = 0.4;
const INCIDENT_SYNC_RUNTIME_SECONDS = 60;

export const pickAgentFunction = weightedPicker<AgentFunction>(AGENT_FUNCTIONS.map((f) => [f.name, f.weight]))!;

/** Runtime varies per task but must be stable across ticks, so the jitter comes from the task id. */
function runtimeSeconds(fn: string, id: string, providerDown: boolean): number {
  const base =
    providerDown && fn === 'sync_carrier_docs'
      ? INCIDENT_SYNC_RUNTIME_SECONDS
      : (AGENT_FUNCTIONS.find((f) => f.name === fn)?.runtimeSeconds ?? 2);
  const jitter = (Number((BigInt(id) * 2654435761n) % 1000n) / 1000) * 0.8 + 0.6;
  return base * jitter;
}

export function failureRate(fn: string, providerDown: boolean): number {
  return providerDown && fn === 'sync_carrier_docs' ? INCIDENT_SYNC_FAILURE_RATE : NORMAL_FAILURE_RATE;
}

export function taskPayload(rng: Rng, fn: AgentFunction): Record<string, unknown> {
  switch (fn) {
    case 'send_quote_email':
      return { template: 'quote_sent', recipients: rng.int(1, 3) };
    case 'sync_carrier_docs':
      return { kinds: ['insurance', 'operating_authority'], carriers: rng.int(1, 12) };
    case 'reprice_lanes':
      return { lanes: rng.int(5, 400) };
    case 'notify_ops':
      return { channel: rng.pick(['ops-alerts', 'dispatch', 'billing']) };
  }
}

export async function advanceAgents(
  client: PoolClient,
  rng: Rng,
  tenants: readonly DemoTenant[],
  requestsPerSecond: number,
  tickSeconds: number,
  at: Date,
  counts: TickCounts,
  /** What was going wrong at an instant (the schedule, plus incidents triggered on demand). */
  incidentsAt: (at: Date) => Incident[] = activeIncidents
): Promise<void> {
  const arrivalRate = requestsPerSecond * TASKS_PER_API_CALL * diurnalFactor(at);
  // A tick longer than a typical task (coarse test clocks) lets each worker run several tasks in it.
  const tasksPerWorker = Math.max(1, Math.floor(tickSeconds / TYPICAL_RUNTIME_SECONDS));
  const workers = Math.max(MIN_WORKERS, Math.ceil(arrivalRate * WORKERS_PER_ARRIVAL)) * tasksPerWorker;

  const running = await client.query<{ id: string; fn_name: string; updated_at: Date }>(
    `SELECT id::text, fn_name, updated_at FROM agent_tasks WHERE status = 'running'`
  );
  // While running, updated_at is when the task started.
  const startedDuringOutage = (t: { updated_at: Date }) => hasIncident(incidentsAt(t.updated_at), 'agent_failures');
  const done = running.rows.filter(
    (t) => (at.getTime() - t.updated_at.getTime()) / 1000 >= runtimeSeconds(t.fn_name, t.id, startedDuringOutage(t))
  );
  if (done.length > 0) {
    const outcomes = done.map((t) =>
      rng.chance(failureRate(t.fn_name, startedDuringOutage(t))) ? 'failed' : 'success'
    );
    const finished = await client.query(
      `UPDATE agent_tasks t SET status = o.status, updated_at = $3
         FROM unnest($1::bigint[], $2::text[]) AS o(id, status) WHERE t.id = o.id`,
      [done.map((t) => t.id), outcomes, at]
    );
    counts.updated.agent_tasks += finished.rowCount ?? 0;
  }

  const free = workers - (running.rows.length - done.length);
  if (free > 0) {
    // A worker picks up only what was queued before this instant: nothing is started in the tick it arrives.
    const started = await client.query(
      `UPDATE agent_tasks SET status = 'running', updated_at = $1
        WHERE id IN (SELECT id FROM agent_tasks WHERE status = 'queued' AND created_at < $1
                      ORDER BY created_at, id LIMIT $2)`,
      [at, free]
    );
    counts.updated.agent_tasks += started.rowCount ?? 0;
  }

  const pickTenant = weightedPicker(tenants.map((t) => [t, t.profile.size] as const));
  const tasks = newAgentTaskBatch();
  const arrivals = pickTenant ? rng.poisson(arrivalRate * tickSeconds) : 0;
  for (let i = 0; i < arrivals; i++) {
    const fn = pickAgentFunction(rng);
    tasks.push({
      company_id: pickTenant!(rng).id,
      fn_name: fn,
      payload: taskPayload(rng, fn),
      status: 'queued',
      created_at: at,
      updated_at: at,
    });
  }
  counts.inserted.agent_tasks += await tasks.insert(client);
}
