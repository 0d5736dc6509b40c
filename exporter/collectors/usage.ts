import sortedBtree from 'sorted-btree';
import type { PoolClient } from '../../core/db.ts';
import {
  loadPlanLimits,
  periodBounds,
  thresholdBase,
  usageBand,
  usageRatio,
  USAGE_BANDS,
  type PlanLimit,
  type UsageBand,
} from '../../core/plan-usage.ts';
import { withTransaction } from '../../core/db.ts';
import { appendAll } from '../../core/arrays.ts';
import {
  advanceIdCursor,
  cursorFingerprint,
  initialCursor,
  type CursorStepOptions,
  type IdCursorState,
  type IdFilter,
} from '../id-cursor.ts';
import type { Collector } from '../runner.ts';
import { withCollectorState } from '../state-store.ts';
import type { CollectorContext } from './context.ts';

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

/** Cap on cursor steps per refresh (each reads up to EXPORTER_BATCH_IDS ids), as followIdCursor's. */
const MAX_STEPS_PER_REFRESH = 20;
const MAX_OPEN_GAPS = 10_000;
/**
 * A refresh writes its unwritten deltas to usage_daily (a "write step") at least once in this many
 * refreshes: at the default 5 s refresh, once a minute. The refreshes between only read.
 */
const WRITE_EVERY_REFRESHES = 12;
/** …or as soon as this many (tenant, feature, day) deltas are unwritten, which bounds the memory they take. */
const MAX_UNWRITTEN_KEYS = 50_000;

/**
 * Tenant usage against plan limits, in the periods and with the ratio core/plan-usage.ts defines (UTC
 * days and months; used / included amount, the base of the 80/90/100 % warnings).
 *
 * New usage_events are folded into controlroom.usage_daily (per tenant, feature, day); this process keeps
 * the current day's and month's sums in memory, updated from the fold's deltas and reloaded from
 * usage_daily only when the period rolls over or another instance moved the cursor.
 *
 * Most refreshes only read: the new events' deltas go into the in-memory sums and into `unwritten`, and
 * the cursor moves on in memory only (`memCursor`). Every WRITE_EVERY_REFRESHES-th refresh (and the
 * first, one after a backlog, a new day, another instance's write or MAX_UNWRITTEN_KEYS deltas) is a write
 * step: under the state row's lock it upserts the unwritten deltas, coalesced (a tenant busy all minute
 * is one row update, not twelve), folds what is new, and stores the cursor, in one transaction. Why: the
 * upsert of ~500 usage_daily rows was most of a refresh's cost, and it was repeated for the same rows
 * every refresh.
 *
 * Exactness: usage_daily and the stored cursor always change together, so they describe exactly the
 * events up to the stored cursor; the in-memory sums are usage_daily plus exactly the events between the
 * stored cursor and memCursor. A restart loses only that second part and reads those events again from
 * usage_events (so a retention purge must not remove events younger than a minute or two, as it never
 * does: the same holds for a Postgres crash, see state-store.ts). A refresh that sees the stored cursor
 * moved by another instance drops its unwritten deltas (the other instance folded those events itself)
 * and reloads from usage_daily, as before.
 */
export class UsageCollector implements Collector {
  readonly name = 'usage';
  readonly intervalMs: number;
  private period: { today: string; monthStart: string } | null = null;
  private today = new Map<string, number>();
  private month = new Map<string, number>();
  /** Fingerprint of the stored cursor this process last wrote or loaded (null: nothing yet, reload). */
  private lastWritten: string | null = null;
  /** How far this process has counted: the stored cursor plus the read-only refreshes since. */
  private memCursor: IdCursorState = initialCursor();
  /** Deltas counted in memory but not yet in usage_daily, by tenant, feature and day. */
  private unwritten = new Map<string, DayDelta>();
  private refreshesSinceWrite = 0;
  /** The last refresh stopped at the step cap with rows left: the next writes, so a backlog's progress is stored. */
  private behind = false;
  private limits: PlanLimit[] = [];
  private limitsLoadedAt = 0;
  // Ratios, band counts and the tenants at or above 80 %, kept up to date tenant by tenant: a refresh
  // costs O(tenants whose usage moved), not O(all tenants). Rebuilt over every limit only when the limits
  // are reloaded (every EXPORTER_SLOW_REFRESH_MS) or the period sums are (new day, another instance).
  private entriesByKey = new Map<string, LimitEntry[]>();
  private bandCounts = new Map<string, number>();
  /**
   * The tenants at or above 80 %, kept worst first (rankOrder) in a B+ tree: a moved tenant is taken out
   * and put back in O(log hot tenants), and the listed ones are the first EXPORTER_USAGE_CAP. (A sorted
   * array needed O(hot tenants) per refresh to take out and merge back a refresh's ~500 moved tenants:
   * 15 ms of a refresh at 100,000 tenants, 38,000 of them hot, in bench/exporter at BENCH_SCALE=10.)
   */
  private ranked = newRanking();
  private features: string[] = [];
  private rebuildNeeded = true;
  /** Something published changed since the last publish; otherwise the snapshots (and their text) are kept. */
  private changed = true;

  constructor(private readonly ctx: CollectorContext) {
    this.intervalMs = ctx.settings.EXPORTER_REFRESH_MS;
  }

  async refresh(): Promise<void> {
    const writeDue =
      this.lastWritten === null ||
      this.behind ||
      this.refreshesSinceWrite + 1 >= WRITE_EVERY_REFRESHES ||
      this.unwritten.size >= MAX_UNWRITTEN_KEYS ||
      this.period?.today !== currentPeriod(new Date()).today;
    // A read-only refresh that finds the stored cursor moved (another instance wrote) writes instead.
    if (writeDue || !(await this.readOnlyRefresh())) await this.writeRefresh();
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

  /**
   * Counts the new events in memory only, in one REPEATABLE READ snapshot (the cursor's gap detection
   * needs its reads to agree). Returns false, having counted nothing, when the stored cursor is not the
   * one this process last wrote: another instance folded events, and only a write step can reload.
   */
  private async readOnlyRefresh(): Promise<boolean> {
    const read = await withTransaction(this.ctx.pool, 'REPEATABLE READ', async (client) => {
      const { rows } = await client.query<{ state: UsageState }>(
        `SELECT state FROM controlroom.exporter_state WHERE collector = $1`,
        [this.name]
      );
      const stored = rows[0]?.state;
      if (!stored || cursorFingerprint(stored.cursor) !== this.lastWritten) return null;
      let cursor = this.memCursor;
      const deltas: DayDelta[] = [];
      let gapsAbandoned = 0;
      let caughtUp = false;
      for (let step = 0; step < MAX_STEPS_PER_REFRESH && !caughtUp; step++) {
        const advanced = await advanceIdCursor(
          client,
          cursor,
          async (c, filter) => {
            const { rows: n, extra } = await foldUsage(c, filter, false);
            appendAll(deltas, extra);
            return n;
          },
          this.cursorOptions()
        );
        cursor = advanced.state;
        gapsAbandoned += advanced.gapsAbandoned;
        caughtUp = advanced.caughtUp;
      }
      return { cursor, deltas, gapsAbandoned, caughtUp };
    });
    if (!read) return false;
    // Nothing was written, so nothing can be lost by a failure before this point: memory moves only now.
    this.memCursor = read.cursor;
    this.behind = !read.caughtUp;
    for (const d of read.deltas) {
      const key = `${d.company_id}\u0000${d.feature_key}\u0000${d.day}`;
      const held = this.unwritten.get(key);
      if (held) held.delta = String(Number(held.delta) + Number(d.delta));
      else this.unwritten.set(key, { ...d });
    }
    this.apply(read.deltas);
    this.refreshesSinceWrite++;
    if (read.gapsAbandoned > 0) this.ctx.metrics.abandonedIdGaps.inc({ collector: this.name }, read.gapsAbandoned);
    this.ctx.metrics.openIdGaps.set({ collector: this.name }, read.cursor.gaps.length);
    return true;
  }

  /**
   * Write steps, each one transaction holding the state row's lock (withCollectorState): the first writes
   * the unwritten deltas and continues from memCursor, or, when the stored cursor is not this process's
   * (first refresh, another instance), drops them and reloads the period sums from usage_daily and
   * continues from the stored cursor; then the new events are folded into usage_daily as they are read and
   * the cursor stored. Memory changes only after a step commits, so a failed or retried step leaves it as
   * it was.
   */
  private async writeRefresh(): Promise<void> {
    for (let step = 0; step < MAX_STEPS_PER_REFRESH; step++) {
      const outcome = await withCollectorState<
        UsageState,
        {
          state: UsageState;
          reloaded: { today: Map<string, number>; month: Map<string, number> } | null;
          period: { today: string; monthStart: string };
          deltas: DayDelta[];
          caughtUp: boolean;
          gapsAbandoned: number;
        }
      >(
        this.ctx.pool,
        this.name,
        () => ({ cursor: initialCursor() }),
        async (client, current) => {
          const now = currentPeriod(new Date());
          const own = this.lastWritten !== null && cursorFingerprint(current.cursor) === this.lastWritten;
          let from = current.cursor;
          if (own && this.unwritten.size > 0) {
            await writeDeltas(client, [...this.unwritten.values()]);
            from = this.memCursor;
          } else if (own) {
            from = this.memCursor;
          }
          // Read after the unwritten deltas are written (this transaction sees its own writes), so the
          // reloaded sums include them.
          const reloaded = !own || this.period?.today !== now.today ? await loadPeriodSums(client, now) : null;
          const deltas: DayDelta[] = [];
          const advanced = await advanceIdCursor(
            client,
            from,
            async (c, filter) => {
              const { rows, extra } = await foldUsage(c, filter, true);
              appendAll(deltas, extra);
              return rows;
            },
            this.cursorOptions()
          );
          const state = { cursor: advanced.state };
          return {
            state,
            result: {
              state,
              reloaded,
              period: now,
              deltas,
              caughtUp: advanced.caughtUp,
              gapsAbandoned: advanced.gapsAbandoned,
            },
          };
        }
      );
      if (outcome.reloaded) {
        this.today = outcome.reloaded.today;
        this.month = outcome.reloaded.month;
        this.period = outcome.period;
        this.rebuildNeeded = true;
      }
      this.unwritten = new Map();
      this.refreshesSinceWrite = 0;
      this.apply(outcome.deltas);
      this.memCursor = outcome.state.cursor;
      this.lastWritten = cursorFingerprint(outcome.state.cursor);
      this.behind = !outcome.caughtUp;
      if (outcome.gapsAbandoned > 0)
        this.ctx.metrics.abandonedIdGaps.inc({ collector: this.name }, outcome.gapsAbandoned);
      this.ctx.metrics.openIdGaps.set({ collector: this.name }, outcome.state.cursor.gaps.length);
      if (outcome.caughtUp) break;
    }
  }

  private cursorOptions(): CursorStepOptions {
    const { settings } = this.ctx;
    return {
      table: 'usage_events',
      batchIds: settings.EXPORTER_BATCH_IDS,
      gapGraceMs: settings.EXPORTER_GAP_GRACE_SECONDS * 1000,
      maxGaps: MAX_OPEN_GAPS,
      now: Date.now(),
    };
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
    this.ranked = newRanking();
    this.limits.forEach((limit, index) => {
      const key = cfKey(limit.companyId, limit.feature);
      const entry: LimitEntry = { limit, key, index, ratio: 0, band: '' };
      const same = this.entriesByKey.get(key);
      if (same) same.push(entry);
      else this.entriesByKey.set(key, [entry]);
      this.count(entry);
    });
    this.features = [...new Set(this.limits.map((l) => l.feature))].sort();
    this.rebuildNeeded = false;
    this.changed = true;
  }

  /** Counts the entry in its band (and ranks it when hot), from the current period sums. */
  private count(entry: LimitEntry): void {
    const used = (entry.limit.period === 'day' ? this.today : this.month).get(entry.key) ?? 0;
    entry.ratio = usageRatio(used, entry.limit.softLimit) ?? 0;
    entry.band = bandKey(entry.limit.feature, usageBand(entry.ratio));
    this.bandCounts.set(entry.band, (this.bandCounts.get(entry.band) ?? 0) + 1);
    if (entry.ratio >= HOT_RATIO) this.ranked.set(entry, undefined);
    this.changed = true;
  }

  /** Takes the entry out of its band and the ranking, before its ratio changes (its position is found by it). */
  private uncount(entry: LimitEntry): void {
    this.bandCounts.set(entry.band, (this.bandCounts.get(entry.band) ?? 1) - 1);
    // Found by its ratio as ranked: the ratio must not have changed since (count and uncount pair up).
    if (entry.ratio >= HOT_RATIO && !this.ranked.delete(entry))
      throw new Error(`usage ranking out of order at ${entry.key}`);
  }

  private publish(): void {
    const { metrics, settings } = this.ctx;
    this.changed = false;
    const listed: LimitEntry[] = [];
    for (const entry of this.ranked.keys()) {
      if (listed.length >= settings.EXPORTER_USAGE_CAP) break;
      listed.push(entry);
    }

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
          value: this.bandCounts.get(bandKey(feature, band)) ?? 0,
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
 * Worst first; equal ratios by company id, then in the limits' own order. The index is the position in
 * the limits as loaded, and loadPlanLimits orders them by company id (uuid order: the order of their
 * text's code units) and feature, so the index alone is that tie-break, without comparing two uuid strings
 * at every step of a ranking's search (half its time in bench/exporter). A total order (the index is
 * unique), so an entry has exactly one position in the ranking.
 */
function rankOrder(a: LimitEntry, b: LimitEntry): number {
  return b.ratio - a.ratio || a.index - b.index;
}

/** A key of bandCounts (the one place it is spelled): built once per feature and band, not a string per count. */
const bandKeys = new Map<string, Record<UsageBand, string>>();
function bandKey(feature: string, band: UsageBand): string {
  let keys = bandKeys.get(feature);
  if (!keys) {
    keys = Object.fromEntries(USAGE_BANDS.map((b) => [b, `${feature}\u0000${b}`])) as Record<UsageBand, string>;
    bandKeys.set(feature, keys);
  }
  return keys[band];
}

const BTree = sortedBtree.default;

/** An empty ranking: hot entries as keys, in rankOrder (the values are unused). */
const newRanking = () => new BTree<LimitEntry, undefined>(undefined, rankOrder);

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

/**
 * The new events' deltas per tenant, feature and UTC day; with `write`, also added to usage_daily in the
 * same statement (a data-modifying WITH runs exactly once even though the outer query does not read it).
 */
async function foldUsage(
  client: PoolClient,
  filter: IdFilter,
  write: boolean
): Promise<{ rows: number; extra: DayDelta[] }> {
  const agg = `SELECT company_id, feature_key, (occurred_at AT TIME ZONE 'UTC')::date AS day, sum(qty) AS qty, count(*) AS n
                 FROM usage_events WHERE ${filter.sql}
                GROUP BY 1, 2, 3`;
  const { rows } = await client.query<DayDelta & { events: string }>(
    write
      ? `WITH agg AS (${agg}), upsert AS (
           INSERT INTO controlroom.usage_daily (company_id, feature_key, day, qty)
           SELECT company_id, feature_key, day, qty FROM agg
           ON CONFLICT (company_id, feature_key, day) DO UPDATE SET qty = usage_daily.qty + EXCLUDED.qty
         )
         SELECT company_id, feature_key, to_char(day, 'YYYY-MM-DD') AS day, qty AS delta, n AS events FROM agg`
      : `SELECT company_id, feature_key, to_char(day, 'YYYY-MM-DD') AS day, qty AS delta, n AS events FROM (${agg}) agg`,
    filter.params
  );
  const events = rows.reduce((sum, r) => sum + Number(r.events), 0);
  return { rows: events, extra: rows };
}

/** Adds deltas counted in memory to usage_daily: one statement, one row per tenant, feature and day. */
async function writeDeltas(client: PoolClient, deltas: DayDelta[]): Promise<void> {
  await client.query(
    `INSERT INTO controlroom.usage_daily (company_id, feature_key, day, qty)
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::date[], $4::bigint[])
     ON CONFLICT (company_id, feature_key, day) DO UPDATE SET qty = usage_daily.qty + EXCLUDED.qty`,
    [
      deltas.map((d) => d.company_id),
      deltas.map((d) => d.feature_key),
      deltas.map((d) => d.day),
      deltas.map((d) => d.delta),
    ]
  );
}
