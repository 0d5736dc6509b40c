import type { PoolClient } from '../../core/db.ts';
import { advanceIdCursor, type IdCursorState, type IdFilter } from '../id-cursor.ts';
import { withCollectorState } from '../state-store.ts';
import type { CollectorContext } from './context.ts';

/** Cap on catch-up steps per refresh so a huge backlog is worked off over several refreshes. */
const MAX_STEPS_PER_REFRESH = 20;
const MAX_OPEN_GAPS = 10_000;

export interface FollowSpec<S extends { cursor: IdCursorState }, X> {
  initial: () => S;
  /** Folds the rows matching the filter; `extra` carries what the fold produced into `next`. */
  fold: (client: PoolClient, filter: IdFilter, current: S) => Promise<{ rows: number; extra: X }>;
  /** The state to persist after a step; `extra` is the last fold's product (absent when nothing was folded). */
  next: (current: S, cursor: IdCursorState, extra: X | undefined) => S;
  /** Runs first in each step's transaction, before any fold (e.g. to reload derived state). */
  beforeStep?: (client: PoolClient, current: S) => Promise<void>;
  /** Runs after each step has committed, with the committed state and every fold product of the step. */
  afterCommit?: (state: S, extras: X[]) => void;
}

/**
 * Advances a collector's id cursor until it has caught up (or the step cap is reached), one transaction
 * per step. Returns the committed state, or undefined when nothing was committed.
 */
export async function followIdCursor<S extends { cursor: IdCursorState }, X>(
  ctx: CollectorContext,
  collector: string,
  table: string,
  spec: FollowSpec<S, X>
): Promise<S | undefined> {
  let committed: S | undefined;
  for (let step = 0; step < MAX_STEPS_PER_REFRESH; step++) {
    const outcome = await withCollectorState<S, { state: S; caughtUp: boolean; extras: X[] }>(
      ctx.pool,
      collector,
      spec.initial,
      async (client, current) => {
        await spec.beforeStep?.(client, current);
        const extras: X[] = [];
        let state = current;
        const advanced = await advanceIdCursor(
          client,
          current.cursor,
          async (c, filter) => {
            const { rows, extra } = await spec.fold(c, filter, state);
            extras.push(extra);
            state = spec.next(state, state.cursor, extra);
            return rows;
          },
          {
            table,
            batchIds: ctx.settings.EXPORTER_BATCH_IDS,
            gapGraceMs: ctx.settings.EXPORTER_GAP_GRACE_SECONDS * 1000,
            maxGaps: MAX_OPEN_GAPS,
            now: Date.now(),
          }
        );
        if (advanced.gapsAbandoned > 0) ctx.metrics.abandonedIdGaps.inc({ collector }, advanced.gapsAbandoned);
        state = spec.next(state, advanced.state, undefined);
        return { state, result: { state, caughtUp: advanced.caughtUp, extras } };
      }
    );
    committed = outcome.state;
    spec.afterCommit?.(outcome.state, outcome.extras);
    ctx.metrics.openIdGaps.set({ collector }, outcome.state.cursor.gaps.length);
    if (outcome.caughtUp) break;
  }
  return committed;
}
