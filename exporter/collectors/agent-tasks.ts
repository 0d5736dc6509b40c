import type { PoolClient } from '../../core/db.ts';
import type { Collector } from '../runner.ts';
import { withCollectorState } from '../state-store.ts';
import { addInto, labelKey, labelValues, type CollectorContext, type Totals } from './context.ts';

interface CompletionState {
  /** Completions with completed_at <= settledUntil are in `totals`; ISO time, null before the first run. */
  settledUntil: string | null;
  totals: Totals;
}

/**
 * Agent task completions and queue depth.
 *
 * A task completes by an UPDATE, so there is no append-only id to follow; the cursor is completed_at,
 * which a trigger (migration 1700000000013) sets only when the status changes INTO success or failed
 * (from queued/running, or on an insert as finished). Any later UPDATE of a finished row (the TMS
 * touching its payload, re-saving the same status) keeps it, so a completion is counted once whatever
 * happens to the row afterwards; a retry that runs the task again (back to queued/running, then
 * finished) is a new completion. Completions older than the settle window (EXPORTER_SETTLE_SECONDS) are
 * folded into persisted totals once; newer ones are counted afresh on every refresh, so a completion
 * shows within one refresh and a transaction that commits a little late is still counted exactly once.
 */
export class AgentTasksCollector implements Collector {
  readonly name = 'agent_tasks';
  readonly intervalMs: number;
  /** Last published value per series: a provisional completion that is later retried must not lower it. */
  private readonly published = new Map<string, number>();
  private readonly knownFunctions = new Set<string>();

  constructor(private readonly ctx: CollectorContext) {
    this.intervalMs = ctx.settings.EXPORTER_REFRESH_MS;
  }

  async refresh(): Promise<void> {
    const settleSeconds = this.ctx.settings.EXPORTER_SETTLE_SECONDS;
    const { totals, provisional, queue, now } = await withCollectorState<
      CompletionState,
      { totals: Totals; provisional: Totals; queue: QueueRow[]; now: number }
    >(
      this.ctx.pool,
      this.name,
      () => ({ settledUntil: null, totals: {} }),
      async (client, current) => {
        const clock = await client.query<{ horizon: Date; now: Date }>(
          `SELECT now() - make_interval(secs => $1) AS horizon, now() AS now`,
          [settleSeconds]
        );
        const horizon = clock.rows[0]!.horizon;
        const totals = { ...current.totals };
        const from = current.settledUntil ? new Date(current.settledUntil) : null;
        if (!from || horizon > from) await foldCompletions(client, totals, from, horizon);
        const provisional: Totals = {};
        await foldCompletions(client, provisional, horizon, null);
        const queue = await readQueue(client);
        return {
          state: { settledUntil: horizon.toISOString(), totals },
          result: { totals, provisional, queue, now: clock.rows[0]!.now.getTime() },
        };
      }
    );
    this.publishCompletions(totals, provisional);
    this.publishQueue(queue, now);
  }

  private publishCompletions(totals: Totals, provisional: Totals): void {
    const combined: Totals = {};
    for (const [key, v] of Object.entries(totals)) addInto(combined, key, v);
    for (const [key, v] of Object.entries(provisional)) addInto(combined, key, v);
    const samples = Object.entries(combined).map(([key, [count = 0]]) => {
      const value = Math.max(count, this.published.get(key) ?? 0);
      this.published.set(key, value);
      const [fnName = '', status = ''] = labelValues(key);
      this.knownFunctions.add(fnName);
      return { labels: { fn_name: fnName, status }, value };
    });
    this.ctx.metrics.agentCompleted.replace(samples);
  }

  private publishQueue(queue: QueueRow[], nowMs: number): void {
    for (const row of queue) this.knownFunctions.add(row.fn_name);
    const byFunction = new Map(queue.map((row) => [row.fn_name, row]));
    const names = [...this.knownFunctions].sort();
    this.ctx.metrics.agentPending.replace(
      names.map((fn) => ({ labels: { fn_name: fn }, value: Number(byFunction.get(fn)?.queued ?? 0) }))
    );
    this.ctx.metrics.agentRunning.replace(
      names.map((fn) => ({ labels: { fn_name: fn }, value: Number(byFunction.get(fn)?.running ?? 0) }))
    );
    const oldest = queue.reduce<number | null>((min, row) => {
      if (!row.oldest_queued) return min;
      const t = row.oldest_queued.getTime();
      return min === null || t < min ? t : min;
    }, null);
    this.ctx.metrics.agentOldestPending.replace([
      { labels: {}, value: oldest === null ? 0 : Math.max(0, (nowMs - oldest) / 1000) },
    ]);
  }
}

interface QueueRow {
  fn_name: string;
  queued: string;
  running: string;
  oldest_queued: Date | null;
}

/**
 * Completions with after < completed_at <= upTo (either bound absent = open). The SQL names only the bounds
 * in force: an `$1 IS NULL OR …` condition would make a generic plan that scans the whole table instead
 * of the completion index (agent_tasks_completion_idx), O(all tasks) on every refresh.
 */
async function foldCompletions(client: PoolClient, totals: Totals, after: Date | null, upTo: Date | null) {
  const bounds: string[] = [];
  const params: Date[] = [];
  if (after) bounds.push(`completed_at > $${params.push(after)}`);
  if (upTo) bounds.push(`completed_at <= $${params.push(upTo)}`);
  const { rows } = await client.query<{ fn_name: string; status: string; n: string }>(
    `SELECT fn_name, status, count(*) AS n FROM agent_tasks
      WHERE status IN ('success', 'failed') ${bounds.map((b) => `AND ${b}`).join(' ')}
      GROUP BY 1, 2`,
    params
  );
  for (const row of rows) addInto(totals, labelKey([row.fn_name, row.status]), [Number(row.n)]);
}

async function readQueue(client: PoolClient): Promise<QueueRow[]> {
  const { rows } = await client.query<QueueRow>(
    `SELECT fn_name,
            count(*) FILTER (WHERE status = 'queued') AS queued,
            count(*) FILTER (WHERE status = 'running') AS running,
            min(created_at) FILTER (WHERE status = 'queued') AS oldest_queued
       FROM agent_tasks WHERE status IN ('queued', 'running')
      GROUP BY fn_name`
  );
  return rows;
}
