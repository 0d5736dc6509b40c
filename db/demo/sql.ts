import type { PoolClient } from '../../core/db.ts';

export type SqlType =
  'text' | 'uuid' | 'timestamptz' | 'bigint' | 'integer' | 'numeric' | 'float8' | 'boolean' | 'jsonb';
type Value = string | number | boolean | Date | null | Record<string, unknown>;

/**
 * Rows collected column by column and written with one `INSERT ... SELECT FROM unnest($1::t[], ...)`:
 * one round trip and one parameter per column however many rows, instead of one INSERT per row.
 */
export class RowBatch<S extends Record<string, SqlType>> {
  private readonly columns: Record<keyof S, Value[]>;
  private count = 0;

  constructor(
    private readonly table: string,
    private readonly schema: S
  ) {
    this.columns = Object.fromEntries(Object.keys(schema).map((name) => [name, []])) as unknown as Record<
      keyof S,
      Value[]
    >;
  }

  get size(): number {
    return this.count;
  }

  push(row: { [K in keyof S]: Value }): void {
    for (const name of Object.keys(this.schema) as (keyof S)[]) {
      const value = row[name];
      this.columns[name].push(value instanceof Date ? value.toISOString() : value);
    }
    this.count++;
  }

  /** Writes the rows and empties the batch; returns how many were inserted. */
  async insert(client: PoolClient): Promise<number> {
    if (this.count === 0) return 0;
    const names = Object.keys(this.schema);
    const casts = names.map((name, i) => `$${i + 1}::${this.schema[name]}[]`);
    const params = names.map((name) => this.columns[name as keyof S]);
    const result = await client.query(
      `INSERT INTO ${this.table} (${names.join(', ')}) SELECT * FROM unnest(${casts.join(', ')})`,
      params
    );
    for (const name of names) this.columns[name as keyof S] = [];
    this.count = 0;
    return result.rowCount ?? 0;
  }
}

/** usage_events rows as every writer here produces them (metadata left to its default). */
export const newUsageBatch = () =>
  new RowBatch('usage_events', { company_id: 'uuid', feature_key: 'text', qty: 'bigint', occurred_at: 'timestamptz' });
export type UsageBatch = ReturnType<typeof newUsageBatch>;

export const newAgentTaskBatch = () =>
  new RowBatch('agent_tasks', {
    company_id: 'uuid',
    fn_name: 'text',
    payload: 'jsonb',
    status: 'text',
    created_at: 'timestamptz',
    updated_at: 'timestamptz',
  });

/**
 * Reserves ids from a table's bigserial sequence, so parent and child rows (quotes and their invoices,
 * carriers and their documents) can be written as two batches without relying on RETURNING order.
 */
export async function allocateIds(client: PoolClient, table: string, count: number): Promise<string[]> {
  if (count === 0) return [];
  const { rows } = await client.query<{ id: string }>(
    `SELECT nextval(pg_get_serial_sequence($1, 'id'))::text AS id FROM generate_series(1, $2)`,
    [table, count]
  );
  return rows.map((r) => r.id);
}
