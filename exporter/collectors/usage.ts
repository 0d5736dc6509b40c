import type { PoolClient } from '../../core/db.ts';
import {
  loadPlanLimits,
  periodBounds,
  thresholdBase,
  usageBand,
  usageRatio,
  USAGE_BANDS,
  type PlanLimit,
} from '../../core/plan-usage.ts';
import { cursorFingerprint, initialCursor, type IdCursorState, type IdFilter } from '../id-cursor.ts';
import type { Collector } from '../runner.ts';
import type { CollectorContext } from './context.ts';
import { followIdCursor } from './follow-id-cursor.ts';

interface UsageState {
  cursor: IdCursorState;
}

interface DayDelta {
  company_id: string;
  feature_key: string;
  day: string;
  delta: string;
}

const cfKey = (companyId: string, feature: string) => `${companyId}\u0000${feature}`;

/** One tenant's limit on one feature, with its ratio and band as last counted. */
interface LimitEntry {
  limit: PlanLimit;
  key: string;
  /** Position in the loaded limits (company, feature order): the last tie-break of the worst-first list. */
  index: number;
  ratio: number;
  /** feature \0 band, the key of its count. */
  band: string;
}

/**
 * Tenant usage against plan limits, in the periods and with the ratio core/plan-usage.ts defines (UTC
 * days and months; used / included amount, the base of the 80/90/100 % warnings).
 *
 * New usage_events are folded into controlroom.usage_daily (per tenant, feature, day) as they arrive;
 * this process keeps the current day's and month's sums in memory, updated from the fold's deltas and
 * reloaded from usage_daily only when the period rolls over or another instance moved the cursor.
 */
export class UsageCollector implements Collector {
  readonly name = 'usage';
  readonly intervalMs: number;
  private period: { today: string; monthStart: string } | null = null;
  private today = new Map<string, number>();
  private month = new Map<string, number>();
  private lastWritten: string | null = null;
  private limits: PlanLimit[] = [];
  private limitsLoadedAt = 0;
  // Ratios, band counts and the tenants at or above 80 %, kept up to date tenant by tenant: a refresh
  // costs O(tenants whose usage moved), not O(all tenants). Rebuilt over every limit only when the limits
  // are reloaded (every EXPORTER_SLOW_REFRESH_MS) or the period sums are (new day, another instance).
  private entriesByKey = new Map<string, LimitEntry[]>();
  private bandCounts = new Map<string, number>();
  /** The tenants at or above 80 %, kept worst first (rankOrder) by binary insertion: no sort per refresh. */
  private ranked: LimitEntry[] = [];
  private features: string[] = [];
  private rebuildNeeded = true;
  /** Something published changed since the last publish; otherwise the snapshots (and their text) are kept. */
  private changed = true;

  constructor(private readonly ctx: CollectorContext) {
    this.intervalMs = ctx.settings.EXPORTER_REFRESH_MS;
  }

  async refresh(): Promise<void> {
    let reloaded: { today: Map<string, number>; month: Map<string, number> } | null = null;
    let period = this.period;
    await followIdCursor<UsageState, DayDelta[]>(this.ctx, this.name, 'usage_events', {
      initial: () => ({ cursor: initialCursor() }),
      beforeStep: async (client, current) => {
        const now = currentPeriod(new Date());
        const foreignWrite = this.lastWritten !== null && cursorFingerprint(current.cursor) !== this.lastWritten;
        if (!period || period.today !== now.today || foreignWrite || this.lastWritten === null) {
          reloaded = await loadPeriodSums(client, now);
          period = now;
        }
      },
      fold: async (client, filter) => foldUsage(client, filter),
      next: (_current, cursor) => ({ cursor }),
      afterCommit: (state, extras) => {
        if (reloaded) {
          this.today = reloaded.today;
          this.month = reloaded.month;
          this.period = period;
          this.rebuildNeeded = true;
          reloaded = null;
        }
        for (const deltas of extras) this.apply(deltas);
        this.lastWritten = cursorFingerprint(state.cursor);
      },
    });
    if (Date.now() - this.limitsLoadedAt >= this.ctx.settings.EXPORTER_SLOW_REFRESH_MS) {
      // Only tenants with an included amount have a ratio (unlimited and not-included features have none).
      this.limits = (await loadPlanLimits(this.ctx.pool, { limitedOnly: true })).filter(
        (l) => thresholdBase(l.softLimit) !== null
      );
      this.limitsLoadedAt = Date.now();
      this.rebuildNeeded = true;
    }
    if (this.rebuildNeeded) this.rebuild();
    if (this.changed) this.publish();
  }

  private apply(deltas: DayDelta[]): void {
    if (!this.period) return;
    const touched = new Set<string>();
    for (const d of deltas) {
      const key = cfKey(d.company_id, d.feature_key);
      const qty = Number(d.delta);
      if (d.day >= this.period.monthStart && d.day <= this.period.today) {
        this.month.set(key, (this.month.get(key) ?? 0) + qty);
        touched.add(key);
      }
      if (d.day === this.period.today) this.today.set(key, (this.today.get(key) ?? 0) + qty);
    }
    if (this.rebuildNeeded) return; // counted afresh below
    for (const key of touched) {
      for (const entry of this.entriesByKey.get(key) ?? []) {
        this.uncount(entry);
        this.count(entry);
      }
    }
  }

  /** Every limit's ratio and band, from the period sums. */
  private rebuild(): void {
    this.entriesByKey = new Map();
    this.bandCounts = new Map();
    const hot: LimitEntry[] = [];
    this.limits.forEach((limit, index) => {
      const key = cfKey(limit.companyId, limit.feature);
      const entry: LimitEntry = { limit, key, index, ratio: 0, band: '' };
      const same = this.entriesByKey.get(key);
      if (same) same.push(entry);
      else this.entriesByKey.set(key, [entry]);
      this.count(entry, false);
      if (entry.ratio >= HOT_RATIO) hot.push(entry);
    });
    this.ranked = hot.sort(rankOrder);
    this.features = [...new Set(this.limits.map((l) => l.feature))].sort();
    this.rebuildNeeded = false;
    this.changed = true;
  }

  /** Counts the entry in its band (and ranks it when hot), from the current period sums. */
  private count(entry: LimitEntry, rank = true): void {
    const used = (entry.limit.period === 'day' ? this.today : this.month).get(entry.key) ?? 0;
    entry.ratio = usageRatio(used, entry.limit.softLimit) ?? 0;
    entry.band = `${entry.limit.feature}\u0000${usageBand(entry.ratio)}`;
    this.bandCounts.set(entry.band, (this.bandCounts.get(entry.band) ?? 0) + 1);
    if (rank && entry.ratio >= HOT_RATIO) this.ranked.splice(rankPosition(this.ranked, entry), 0, entry);
    this.changed = true;
  }

  /** Takes the entry out of its band and the ranking, before its ratio changes (its position is found by it). */
  private uncount(entry: LimitEntry): void {
    this.bandCounts.set(entry.band, (this.bandCounts.get(entry.band) ?? 1) - 1);
    if (entry.ratio >= HOT_RATIO) {
      const at = rankPosition(this.ranked, entry);
      if (this.ranked[at] !== entry) throw new Error(`usage ranking out of order at ${entry.key}`);
      this.ranked.splice(at, 1);
    }
  }

  private publish(): void {
    const { metrics, settings } = this.ctx;
    this.changed = false;
    const listed = this.ranked.slice(0, settings.EXPORTER_USAGE_CAP);

    metrics.usageRatio.replace(
      listed.map(({ limit, ratio }) => ({
        labels: { company_id: limit.companyId, feature: limit.feature },
        value: ratio,
      }))
    );
    metrics.usageCompanies.replace(
      this.features.flatMap((feature) =>
        USAGE_BANDS.map((band) => ({
          labels: { feature, band },
          value: this.bandCounts.get(`${feature}\u0000${band}`) ?? 0,
        }))
      )
    );
    const infoSeen = new Set<string>();
    metrics.companyInfo.replace(
      listed
        .filter(({ limit }) => !infoSeen.has(limit.companyId) && infoSeen.add(limit.companyId))
        .map(({ limit }) => ({
          labels: { company_id: limit.companyId, name: limit.companyName, plan: limit.plan ?? '' },
          value: 1,
        }))
    );
  }
}

/** Tenants at or above this share of their included amount are listed in tms_usage_ratio. */
const HOT_RATIO = 0.8;

/**
 * Worst first; equal ratios by company id (uuids: code-unit order is their order), then in the limits' own
 * order. A total order (the index is unique), so an entry has exactly one position in the ranking.
 */
function rankOrder(a: LimitEntry, b: LimitEntry): number {
  return (
    b.ratio - a.ratio ||
    (a.limit.companyId < b.limit.companyId ? -1 : a.limit.companyId > b.limit.companyId ? 1 : a.index - b.index)
  );
}

/** Where `entry` is, or would go, in `ranked` (binary search by rankOrder): O(log n). */
function rankPosition(ranked: readonly LimitEntry[], entry: LimitEntry): number {
  let lo = 0;
  let hi = ranked.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (rankOrder(ranked[mid]!, entry) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The current day and month (as core/plan-usage.ts bounds them), the two periods kept in memory. */
function currentPeriod(now: Date): { today: string; monthStart: string } {
  return { today: periodBounds('day', now).start, monthStart: periodBounds('month', now).start };
}

async function loadPeriodSums(client: PoolClient, period: { today: string; monthStart: string }) {
  const { rows } = await client.query<{ company_id: string; feature_key: string; today: string; month: string }>(
    `SELECT company_id, feature_key,
            coalesce(sum(qty) FILTER (WHERE day = $2::date), 0) AS today,
            sum(qty) AS month
       FROM controlroom.usage_daily
      WHERE day >= $1::date AND day <= $2::date
      GROUP BY 1, 2`,
    [period.monthStart, period.today]
  );
  const today = new Map<string, number>();
  const month = new Map<string, number>();
  for (const r of rows) {
    const key = cfKey(r.company_id, r.feature_key);
    today.set(key, Number(r.today));
    month.set(key, Number(r.month));
  }
  return { today, month };
}

async function foldUsage(client: PoolClient, filter: IdFilter): Promise<{ rows: number; extra: DayDelta[] }> {
  const { rows } = await client.query<DayDelta & { events: string }>(
    `WITH agg AS (
       SELECT company_id, feature_key, (occurred_at AT TIME ZONE 'UTC')::date AS day, sum(qty) AS qty, count(*) AS n
         FROM usage_events WHERE ${filter.sql}
        GROUP BY 1, 2, 3
     ), upsert AS (
       -- A data-modifying WITH runs exactly once even though the outer query does not read it.
       INSERT INTO controlroom.usage_daily (company_id, feature_key, day, qty)
       SELECT company_id, feature_key, day, qty FROM agg
       ON CONFLICT (company_id, feature_key, day) DO UPDATE SET qty = usage_daily.qty + EXCLUDED.qty
     )
     SELECT company_id, feature_key, to_char(day, 'YYYY-MM-DD') AS day, qty AS delta, n AS events
       FROM agg`,
    filter.params
  );
  const events = rows.reduce((sum, r) => sum + Number(r.events), 0);
  return { rows: events, extra: rows };
}
