import type { CollectorContext } from '../../exporter/collectors/context.ts';
import type { Collector } from '../../exporter/runner.ts';
import { LIVE_SCOPE } from './settings.ts';

/**
 * The live regions as the failover engine last recorded them: tms_region_up, tms_region_active,
 * tms_region_traffic_weight, tms_region_consecutive_failures, tms_region_replication_lag_seconds (regions
 * with a lag URL and a reading), tms_region_write_frozen and tms_region_cutover_in_progress (the
 * failover-window latency SLO counts quotes only while it is 1; absent, like the freeze, until the
 * control row exists).
 */
export class RegionsCollector implements Collector {
  readonly name = 'regions';
  readonly intervalMs: number;

  constructor(
    private readonly ctx: CollectorContext,
    private readonly scope: string = LIVE_SCOPE,
  ) {
    this.intervalMs = ctx.settings.EXPORTER_REFRESH_MS;
  }

  async refresh(): Promise<void> {
    const [regions, control] = await Promise.all([
      this.ctx.pool.query<{
        name: string;
        healthy: boolean;
        active: boolean;
        traffic_weight: number;
        consecutive_failures: number;
        replication_lag_url: string | null;
        replication_lag_seconds: number | null;
      }>(
        `SELECT name, healthy, active, traffic_weight, consecutive_failures, replication_lag_url, replication_lag_seconds
           FROM controlroom.regions WHERE scope = $1 ORDER BY name`,
        [this.scope],
      ),
      this.ctx.pool.query<{ write_frozen: boolean; cutover_in_progress: boolean }>(
        `SELECT write_frozen, cutover IS NOT NULL AS cutover_in_progress FROM controlroom.failover_control WHERE scope = $1`,
        [this.scope],
      ),
    ]);
    const { metrics } = this.ctx;
    const per = (value: (r: (typeof regions.rows)[number]) => number) => regions.rows.map((r) => ({ labels: { region: r.name }, value: value(r) }));
    metrics.regionUp.replace(per((r) => (r.healthy ? 1 : 0)));
    metrics.regionActive.replace(per((r) => (r.active ? 1 : 0)));
    metrics.regionTrafficWeight.replace(per((r) => r.traffic_weight));
    metrics.regionConsecutiveFailures.replace(per((r) => r.consecutive_failures));
    metrics.regionReplicationLag.replace(
      regions.rows
        .filter((r) => r.replication_lag_url !== null && r.replication_lag_seconds !== null)
        .map((r) => ({ labels: { region: r.name }, value: r.replication_lag_seconds! })),
    );
    const frozen = control.rows[0];
    metrics.regionWriteFrozen.replace(frozen ? [{ labels: {}, value: frozen.write_frozen ? 1 : 0 }] : []);
    metrics.regionCutoverInProgress.replace(frozen ? [{ labels: {}, value: frozen.cutover_in_progress ? 1 : 0 }] : []);
  }
}

export const createRegionsCollector = (ctx: CollectorContext): Collector => new RegionsCollector(ctx);
