import { FREEZE_CAUSES } from '../../alerting/freeze-cause.ts';
import type { Collector } from '../runner.ts';
import type { CollectorContext } from './context.ts';

/** The release freeze as last published by the freeze sync (controlroom.freeze_state). */
export class ReleaseFreezeCollector implements Collector {
  readonly name = 'release_freeze';
  readonly intervalMs: number;

  constructor(private readonly ctx: CollectorContext) {
    this.intervalMs = ctx.settings.EXPORTER_REFRESH_MS;
  }

  async refresh(): Promise<void> {
    const { rows } = await this.ctx.pool.query<{ frozen: boolean; cause: string; since: Date }>(
      `SELECT frozen, cause, since FROM controlroom.freeze_state WHERE id = 1`
    );
    const state = rows[0];
    if (!state) return;
    const { metrics } = this.ctx;
    metrics.releaseFrozen.replace([{ labels: {}, value: state.frozen ? 1 : 0 }]);
    metrics.releaseFreezeReason.replace(
      FREEZE_CAUSES.map((cause) => ({ labels: { reason: cause }, value: cause === state.cause ? 1 : 0 }))
    );
    metrics.releaseFreezeSince.replace([{ labels: {}, value: state.since.getTime() / 1000 }]);
  }
}
