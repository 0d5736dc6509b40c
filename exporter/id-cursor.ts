import type { PoolClient } from '../core/db.ts';
import { appendAll } from '../core/arrays.ts';

/**
 * Reads an append-only table by its bigserial id exactly once per row.
 *
 * Ids are handed out before commit, so a row with a lower id can become visible after a higher one
 * (a slow transaction, or a rolled-back one that never appears). The cursor therefore remembers every
 * id range it passed without seeing rows ("gaps") and re-checks them on later refreshes; a gap still
 * empty after the grace period is given up. Each step costs O(new rows + rows found in gaps).
 */
export interface IdCursorState {
  watermark: number;
  gaps: GapRange[];
}

export interface GapRange {
  from: number;
  to: number;
  /** epoch ms when the gap was first seen */
  since: number;
}

/** A boolean SQL condition on the table's `id` column, with its parameters starting at $1. */
export interface IdFilter {
  sql: string;
  params: unknown[];
}

/** Folds the rows matching the filter into the collector's totals; returns how many rows matched. */
export type FoldRows = (client: PoolClient, filter: IdFilter) => Promise<number>;

export interface CursorStepOptions {
  table: string;
  batchIds: number;
  gapGraceMs: number;
  maxGaps: number;
  now: number;
}

export interface CursorStepResult {
  state: IdCursorState;
  rowsFolded: number;
  caughtUp: boolean;
  gapsAbandoned: number;
}

export const initialCursor = (): IdCursorState => ({ watermark: 0, gaps: [] });

/** Identity of a cursor position; independent of key order, which jsonb does not keep. */
export const cursorFingerprint = (cursor: IdCursorState): string =>
  `${cursor.watermark}|${cursor.gaps.map((g) => `${g.from}-${g.to}`).join(',')}`;

export async function advanceIdCursor(
  client: PoolClient,
  cursor: IdCursorState,
  fold: FoldRows,
  options: CursorStepOptions
): Promise<CursorStepResult> {
  const { table } = options;
  let rowsFolded = 0;

  const { gaps: stillOpen, found } = await recheckGaps(client, table, cursor.gaps);
  if (found.length > 0) rowsFolded += await fold(client, { sql: 'id = ANY($1::bigint[])', params: [found] });

  const maxRow = await client.query<{ max: string | null }>(`SELECT max(id) AS max FROM ${table}`);
  const maxId = maxRow.rows[0]?.max == null ? cursor.watermark : Number(maxRow.rows[0].max);
  const upto = Math.min(maxId, cursor.watermark + options.batchIds);
  const newGaps: GapRange[] = [];
  if (upto > cursor.watermark) {
    const filter = { sql: 'id > $1 AND id <= $2', params: [cursor.watermark, upto] };
    const seen = await fold(client, filter);
    rowsFolded += seen;
    if (seen < upto - cursor.watermark) {
      appendAll(newGaps, await findGaps(client, table, cursor.watermark, upto, options.now));
    }
  }

  let gaps = [...stillOpen, ...newGaps].filter((g) => options.now - g.since <= options.gapGraceMs);
  let gapsAbandoned = stillOpen.length + newGaps.length - gaps.length;
  if (gaps.length > options.maxGaps) {
    gapsAbandoned += gaps.length - options.maxGaps;
    gaps = gaps.slice(gaps.length - options.maxGaps);
  }
  return {
    state: { watermark: Math.max(cursor.watermark, upto), gaps },
    rowsFolded,
    caughtUp: upto >= maxId,
    gapsAbandoned,
  };
}

/** Ids that have appeared inside known gaps, and the gaps that remain once those ids are cut out. */
async function recheckGaps(
  client: PoolClient,
  table: string,
  gaps: GapRange[]
): Promise<{ gaps: GapRange[]; found: number[] }> {
  if (gaps.length === 0) return { gaps, found: [] };
  gaps = [...gaps].sort((a, b) => a.from - b.from);
  const { rows } = await client.query<{ id: string }>(
    `SELECT t.id FROM ${table} t
       JOIN unnest($1::bigint[], $2::bigint[]) AS g(lo, hi) ON t.id BETWEEN g.lo AND g.hi
      ORDER BY t.id`,
    [gaps.map((g) => g.from), gaps.map((g) => g.to)]
  );
  const found = rows.map((r) => Number(r.id));
  if (found.length === 0) return { gaps, found };

  const remaining: GapRange[] = [];
  let i = 0;
  for (const gap of gaps) {
    let start = gap.from;
    while (i < found.length && found[i]! < gap.from) i++;
    while (i < found.length && found[i]! <= gap.to) {
      if (found[i]! > start) remaining.push({ from: start, to: found[i]! - 1, since: gap.since });
      start = found[i]! + 1;
      i++;
    }
    if (start <= gap.to) remaining.push({ from: start, to: gap.to, since: gap.since });
  }
  return { gaps: remaining, found };
}

async function findGaps(
  client: PoolClient,
  table: string,
  after: number,
  upto: number,
  now: number
): Promise<GapRange[]> {
  const { rows } = await client.query<{ lo: string; hi: string }>(
    `SELECT prev + 1 AS lo, id - 1 AS hi FROM (
       SELECT id, lag(id, 1, $1::bigint) OVER (ORDER BY id) AS prev
         FROM (SELECT id FROM ${table} WHERE id > $1 AND id <= $2
               UNION ALL SELECT $2::bigint + 1) ids
     ) steps
     WHERE id > prev + 1`,
    [after, upto]
  );
  return rows.map((r) => ({ from: Number(r.lo), to: Number(r.hi), since: now }));
}
