import type { PoolClient } from '../../core/db.ts';
import { initialCursor, type IdCursorState, type IdFilter } from '../id-cursor.ts';
import type { Collector } from '../runner.ts';
import { addInto, labelKey, type CollectorContext, type Totals } from './context.ts';
import { followIdCursor } from './follow-id-cursor.ts';

export interface IdRollupSpec {
  name: string;
  table: string;
  /**
   * SQL for the first total, what each row stands for: `count(*)` (one per row) unless the rows are
   * tallies, e.g. `sum(lanes)`. The id cursor still counts rows to find the gaps in the ids.
   */
  count?: string;
  /** Label columns as SQL expressions over the table's row. */
  labels: readonly { name: string; sql: string }[];
  /** Aggregates summed into the running totals after the row count (e.g. bucket counts, sums). */
  values: readonly string[];
  /** Publishes the totals ([row count, ...values] per label set); called after every refresh. */
  publish(totals: Totals): void;
}

interface RollupState {
  cursor: IdCursorState;
  totals: Totals;
}

/**
 * A counter family over an append-only table: each refresh folds only the rows with new ids (and any
 * late arrivals in known gaps) into totals kept in controlroom.exporter_state.
 */
export class IdRollupCollector implements Collector {
  readonly name: string;
  readonly intervalMs: number;

  constructor(
    private readonly spec: IdRollupSpec,
    private readonly ctx: CollectorContext
  ) {
    this.name = spec.name;
    this.intervalMs = ctx.settings.EXPORTER_REFRESH_MS;
  }

  async refresh(): Promise<void> {
    const state = await followIdCursor<RollupState, Totals>(this.ctx, this.name, this.spec.table, {
      initial: () => ({ cursor: initialCursor(), totals: {} }),
      fold: async (client, filter, current) => {
        const totals = { ...current.totals };
        const rows = await this.fold(client, filter, totals);
        return { rows, extra: totals };
      },
      next: (current, cursor, totals) => ({ cursor, totals: totals ?? current.totals }),
    });
    if (state) this.spec.publish(state.totals);
  }

  private async fold(client: PoolClient, filter: IdFilter, totals: Totals): Promise<number> {
    const columns = [
      ...this.spec.labels.map((l, i) => `${l.sql} AS l${i}`),
      'count(*) AS n',
      `${this.spec.count ?? 'count(*)'} AS total`,
      ...this.spec.values.map((v, i) => `${v} AS v${i}`),
    ];
    const groupBy = this.spec.labels.map((_, i) => i + 1).join(', ');
    const { rows } = await client.query<Record<string, string>>(
      `SELECT ${columns.join(', ')} FROM ${this.spec.table} WHERE ${filter.sql} GROUP BY ${groupBy}`,
      filter.params
    );
    let seen = 0;
    for (const row of rows) {
      seen += Number(row.n);
      const key = labelKey(this.spec.labels.map((_, i) => String(row[`l${i}`])));
      addInto(totals, key, [Number(row.total), ...this.spec.values.map((_, i) => Number(row[`v${i}`] ?? 0))]);
    }
    return seen;
  }
}
