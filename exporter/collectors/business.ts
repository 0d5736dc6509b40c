import type { QueryResult } from 'pg';
import { withTransaction, type PoolClient } from '../../core/db.ts';
import type { GapRange, IdCursorState } from '../id-cursor.ts';
import type { Collector } from '../runner.ts';
import type { CollectorContext } from './context.ts';

export const FUNNELS = ['quote_to_book', 'trial_to_paid', 'invite_to_onboard'] as const;
export const DOC_STATUSES = ['valid', 'expiring_soon', 'expired'] as const;

const one = (value: number | undefined) => (value === undefined ? [] : [{ labels: {}, value }]);

/** An instant as integer microseconds since the epoch, exactly as Postgres holds it (no ms rounding). */
const us = (column: string) => `(extract(epoch FROM ${column}) * 1000000)::int8`;

/**
 * The KPIs still read by SQL, each bounded by an index or a small table (30-day windows: quotes, trials,
 * invites, invoices, metered overage; carrier documents), with the clock the revenue model uses: one
 * simple-protocol round trip, its statements in the refresh's snapshot and at its now().
 */
/** How many statements WINDOWED_SQL holds: the results after them are the ledger's. */
const WINDOWED_STATEMENTS = 5;
const WINDOWED_SQL = `
  SELECT ${us('now()')}::text AS now_us, ${us("now() - interval '30 days'")}::text AS before_us;
  SELECT * FROM controlroom.funnel_30d;
  SELECT variance_ratio FROM controlroom.quote_variance_30d;
  SELECT kind,
         CASE WHEN expires_at <= now() THEN 'expired'
              WHEN expires_at <= now() + interval '7 days' THEN 'expiring_soon'
              ELSE 'valid' END AS status,
         count(*) AS n
    FROM directory_docs GROUP BY 1, 2;
  -- Overage units metered (queued or sent: the outbox bills each row once) over the last 30 days, by
  -- feature; bounded by the event_timestamp index.
  SELECT feature, sum(qty)::text AS units
    FROM controlroom.billing_meter_events
   WHERE event_timestamp > now() - interval '30 days' AND event_timestamp <= now()
   GROUP BY feature`;

/** One state of an account's entitlement (controlroom.entitlement_history), instants in µs. */
interface HistoryState {
  planId: string;
  status: string;
  graceUntil: number | null;
  trialEndsAt: number | null;
  subscribed: boolean;
  validFrom: number;
  validTo: number | null;
}

/** What one account adds to the revenue totals; money in integer cents (plans.price_monthly is numeric(12,2)). */
interface Contribution {
  nNow: number;
  centsNow: number;
  nBefore: number;
  centsBefore: number;
  /** At KPI_ARPA_BASELINE_AT, when it is set. */
  nAt: number;
  centsAt: number;
  /** Its org_entitlements plan while the company is live (deleted_at NULL): the tenants-by-plan count. */
  livePlan: string | null;
}

interface Account {
  id: string;
  deletedAt: number | null;
  /** org_entitlements.plan_id, if it has an entitlement row. */
  entitlementPlan: string | null;
  states: HistoryState[];
  /** Every instant at which whether and how much it pays can change, ascending. */
  boundaries: number[];
  /** The first instant it paid by DATA_START's definition (any time, now or not), or null. */
  firstPaid: number | null;
  /** What it paid at firstPaid (payingAt then): its part of the ARPA baseline when firstPaid is the earliest. */
  paidAtFirst: { n: number; cents: number };
  contribution: Contribution;
  /** Bumped on every re-evaluation: heap entries of an earlier one are stale. */
  version: number;
}

const NONE: Contribution = {
  nNow: 0,
  centsNow: 0,
  nBefore: 0,
  centsBefore: 0,
  nAt: 0,
  centsAt: 0,
  livePlan: null,
};

/**
 * paying_accounts_at(t) (migration 1700000000021) for one account: how many of its states pay at t (one,
 * unless the history overlaps, which its trigger prevents; counted as the SQL would count them) and
 * their MRR in cents. Kept to the letter of the SQL definition, which it replaces.
 */
function payingAt(a: Account, prices: ReadonlyMap<string, number>, t: number): { n: number; cents: number } {
  let n = 0;
  let cents = 0;
  if (a.deletedAt !== null && a.deletedAt <= t) return { n, cents };
  for (const h of a.states) {
    if (h.validFrom > t || (h.validTo !== null && h.validTo <= t)) continue;
    if (!h.subscribed || (h.trialEndsAt !== null && h.trialEndsAt > t)) continue;
    const paying =
      h.status === 'active' ||
      ((h.status === 'grace' || h.status === 'past_due') && h.graceUntil !== null && h.graceUntil > t);
    const price = prices.get(h.planId);
    if (!paying || price === undefined) continue;
    n++;
    cents += price;
  }
  return { n, cents };
}

/**
 * DATA_START's first paying instant of one account (the SQL it replaced: the earliest greatest(valid_from,
 * trial_ends_at) of a subscribed active/grace/past_due state that is inside the state, before the
 * company's deletion and, unless active, inside the grace period), without its "<= now()" test, which is
 * applied to the minimum over all accounts.
 */
function firstPaidOf(states: readonly HistoryState[], deletedAt: number | null): number | null {
  let first: number | null = null;
  for (const h of states) {
    if (!h.subscribed || !['active', 'grace', 'past_due'].includes(h.status)) continue;
    const start = h.trialEndsAt === null ? h.validFrom : Math.max(h.validFrom, h.trialEndsAt);
    if (h.validTo !== null && start >= h.validTo) continue;
    if (deletedAt !== null && start >= deletedAt) continue;
    if (h.status !== 'active' && !(h.graceUntil !== null && h.graceUntil > start)) continue;
    if (first === null || start < first) first = start;
  }
  return first;
}

/** The first boundary after t, or null. */
function nextBoundary(boundaries: readonly number[], t: number): number | null {
  for (const b of boundaries) if (b > t) return b;
  return null;
}

/** A binary min-heap of (instant, account, version); entries of an older version are skipped when popped. */
class DueHeap {
  private items: { at: number; account: Account; version: number }[] = [];

  push(at: number, account: Account): void {
    const items = this.items;
    items.push({ at, account, version: account.version });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]!.at <= items[i]!.at) break;
      [items[parent], items[i]] = [items[i]!, items[parent]!];
      i = parent;
    }
  }

  /** Pops every current entry due at or before `t`: the accounts to evaluate again. */
  popDue(t: number, out: Set<Account>): void {
    const items = this.items;
    while (items.length > 0 && items[0]!.at <= t) {
      const top = items[0]!;
      const last = items.pop()!;
      if (items.length > 0) {
        items[0] = last;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          const r = l + 1;
          let m = i;
          if (l < items.length && items[l]!.at < items[m]!.at) m = l;
          if (r < items.length && items[r]!.at < items[m]!.at) m = r;
          if (m === i) break;
          [items[m], items[i]] = [items[i]!, items[m]!];
          i = m;
        }
      }
      if (top.version === top.account.version) out.add(top.account);
    }
  }

  clear(): void {
    this.items = [];
  }

  get size(): number {
    return this.items.length;
  }
}

/** One state of an account's history with the account's own columns (a row with no state: h.* NULL). */
interface AccountRow {
  id: string;
  deleted_at: string | null;
  entitlement_plan: string | null;
  plan_id: string | null;
  billing_status: string;
  grace_until: string | null;
  trial_ends_at: string | null;
  subscribed: boolean;
  valid_from: string;
  valid_to: string | null;
}

const num = (v: string | null) => (v === null ? null : Number(v));

/**
 * The accounts (all when `ids` is null), one round trip: each company with its deletion and entitlement
 * plan, and every state of its history. Index look-ups per account re-read (companies and org_entitlements
 * by their keys, the history by entitlement_history_company_idx, migration 1700000000037).
 */
const ACCOUNTS_SQL = `
  SELECT c.id, ${us('c.deleted_at')}::text AS deleted_at, e.plan_id AS entitlement_plan,
         h.plan_id, h.billing_status, ${us('h.grace_until')}::text AS grace_until,
         ${us('h.trial_ends_at')}::text AS trial_ends_at, h.subscribed,
         ${us('h.valid_from')}::text AS valid_from, ${us('h.valid_to')}::text AS valid_to
    FROM companies c
    LEFT JOIN org_entitlements e ON e.company_id = c.id
    LEFT JOIN controlroom.entitlement_history h ON h.company_id = c.id
   WHERE $1::uuid[] IS NULL OR c.id = ANY($1::uuid[])`;

async function loadAccounts(client: PoolClient, ids: string[]): Promise<AccountRow[]> {
  return (await client.query<AccountRow>(ACCOUNTS_SQL, [ids])).rows;
}

/**
 * The ledger's first id to read when (re)starting: the last change written more than the gap grace before
 * this snapshot. Changes written since are re-read once (idempotent: an account is re-read whole), and
 * the ids among them not visible yet (uncommitted now) become the cursor's gaps.
 */
const lookbackSql = (graceSeconds: number) =>
  `(SELECT coalesce((SELECT id FROM controlroom.revenue_changes WHERE at < now() - make_interval(secs => ${graceSeconds})
                      ORDER BY id DESC LIMIT 1), 0))`;

/**
 * The ledger rows past the cursor and in its gaps (the id cursor's reads, exporter/id-cursor.ts, as one
 * statement: its bounds are integers this process holds, written into the text so that it can travel
 * with the other statements of the refresh's one round trip). Both halves are primary-key range scans.
 */
function ledgerSql(watermark: string, gaps: readonly GapRange[]): string {
  const inGaps = gaps.map((g) => `(id BETWEEN ${Math.trunc(g.from)} AND ${Math.trunc(g.to)})`).join(' OR ');
  return `SELECT id::text, company_id FROM controlroom.revenue_changes WHERE id > ${watermark}
          ${inGaps ? `UNION ALL SELECT id::text, company_id FROM controlroom.revenue_changes WHERE ${inGaps}` : ''}`;
}

/**
 * The cursor after reading `ids` (the rows ledgerSql returned), as advanceIdCursor moves it: ids found in
 * gaps close them, ids missing between the old watermark and the highest id read open new gaps (stamped
 * `now`), and gaps older than the grace are given up (counted in `abandoned`).
 */
function moveCursor(
  cursor: IdCursorState,
  ids: number[],
  now: number,
  graceMs: number
): { cursor: IdCursorState; abandoned: number } {
  ids.sort((x, y) => x - y);
  const found = new Set(ids);
  const gaps: GapRange[] = [];
  for (const gap of cursor.gaps) {
    let start = gap.from;
    for (const id of ids) {
      if (id < gap.from || id > gap.to) continue;
      if (id > start) gaps.push({ from: start, to: id - 1, since: gap.since });
      start = id + 1;
    }
    if (start <= gap.to) gaps.push({ from: start, to: gap.to, since: gap.since });
  }
  let watermark = cursor.watermark;
  for (const id of ids) {
    if (id <= watermark || !found.has(id)) continue;
    if (id > watermark + 1) gaps.push({ from: watermark + 1, to: id - 1, since: now });
    watermark = id;
  }
  let kept = gaps.filter((g) => now - g.since <= graceMs);
  let abandoned = gaps.length - kept.length;
  if (kept.length > MAX_LEDGER_GAPS) {
    abandoned += kept.length - MAX_LEDGER_GAPS;
    kept = kept.slice(kept.length - MAX_LEDGER_GAPS);
  }
  return { cursor: { watermark, gaps: kept }, abandoned };
}

const MAX_LEDGER_GAPS = 10_000;
/** Ledger rows older than this are deleted (every LEDGER_PURGE_EVERY refreshes): only the last minutes are ever read. */
const LEDGER_RETENTION = '1 day';
const LEDGER_PURGE_EVERY = 60;

/**
 * Every account's revenue state, kept in memory and maintained by changes, not recomputed: the MRR and
 * paying accounts now and 30 days ago, the MRR now of those paying then (NRR), the churned logos, the
 * accounts at KPI_ARPA_BASELINE_AT or at the start of the data (the ARPA baseline), and the live tenants
 * by plan, all as totals of per-account contributions.
 *
 * A refresh re-reads only the accounts named in controlroom.revenue_changes since its cursor (migration
 * 1700000000037), and re-evaluates only the accounts that a boundary of their own has passed since the last
 * refresh (a state began or ended, a trial or a grace period ended, the company's deletion took effect,
 * now or at now - 30 days): two heaps hold each account's next boundary after each instant. Its cost is
 * O(changes + boundaries passed) (× log accounts), not O(accounts). Exact: an account's contribution is
 * paying_accounts_at's definition applied to its full history, re-read whole whenever the ledger names it,
 * in the refresh's snapshot and at its now(); what time alone changes is applied when the time comes.
 * Rebuilt from a full read on the first refresh, after a ledger row naming no account, or when the clock
 * went back.
 */
class RevenueModel {
  accounts = new Map<string, Account>();
  prices = new Map<string, number>();
  plans: string[] = [];
  cursor: IdCursorState | null = null;
  now = 0;
  before = 0;
  totals: Contribution & { retainedCents: number; churned: number } = { ...NONE, retainedCents: 0, churned: 0 };
  livePlans = new Map<string, number>();
  private dueNow = new DueHeap();
  private dueBefore = new DueHeap();
  /**
   * The ARPA baseline at the start of the data, kept as totals by first paying instant: each account adds
   * what it paid at its own first paying instant under that instant, so the baseline is the earliest
   * instant's totals, and a changed account moves its part in O(1). (Recomputed over every account whenever
   * a change could reach it, it cost 14 ms of each refresh in bench/exporter at BENCH_SCALE=10, where all
   * 100,000 accounts first paid at the same instant and every changed account reached it.)
   */
  private byFirstPaid = new Map<number, { accounts: number; n: number; cents: number }>();
  /** The earliest key of byFirstPaid (null: none); undefined when it must be found again (its last account left). */
  private earliestFirstPaid: number | null | undefined = null;

  constructor(private readonly baselineAt: number | null) {}

  /** Replaces everything with a full read. */
  rebuild(plans: { id: string; cents: string }[], rows: AccountRow[]): void {
    this.accounts = new Map();
    this.prices = new Map(plans.map((p) => [p.id, Number(p.cents)]));
    this.plans = plans.map((p) => p.id);
    this.totals = { ...NONE, retainedCents: 0, churned: 0 };
    this.livePlans = new Map();
    this.dueNow.clear();
    this.dueBefore.clear();
    this.byFirstPaid = new Map();
    this.earliestFirstPaid = null;
    this.replace(rows, null);
  }

  /** Re-reads the named accounts (`ids`), as `rows` now has them; an id without a company row is gone. */
  replace(rows: AccountRow[], ids: string[] | null): void {
    const byAccount = new Map<string, { row: AccountRow; states: HistoryState[] }>();
    for (const r of rows) {
      let entry = byAccount.get(r.id);
      if (!entry) byAccount.set(r.id, (entry = { row: r, states: [] }));
      if (r.plan_id === null) continue; // no history
      entry.states.push({
        planId: r.plan_id,
        status: r.billing_status,
        graceUntil: num(r.grace_until),
        trialEndsAt: num(r.trial_ends_at),
        subscribed: r.subscribed,
        validFrom: Number(r.valid_from),
        validTo: num(r.valid_to),
      });
    }
    for (const { row: r, states: list } of byAccount.values()) {
      const deletedAt = num(r.deleted_at);
      const boundaries = new Set<number>();
      if (deletedAt !== null) boundaries.add(deletedAt);
      for (const h of list) {
        for (const b of [h.validFrom, h.validTo, h.trialEndsAt, h.graceUntil]) if (b !== null) boundaries.add(b);
      }
      const held = this.accounts.get(r.id);
      const firstPaid = firstPaidOf(list, deletedAt);
      if (held) this.countFirstPaid(held, -1);
      // Updated in place: the heaps' entries point at this object, and its version (bumped by evaluate)
      // is what makes its entries from before this change stale.
      const account: Account = held ?? {
        id: r.id,
        deletedAt,
        entitlementPlan: null,
        states: [],
        boundaries: [],
        firstPaid: null,
        paidAtFirst: { n: 0, cents: 0 },
        contribution: NONE,
        version: 0,
      };
      account.deletedAt = deletedAt;
      account.entitlementPlan = r.entitlement_plan;
      account.states = list;
      account.boundaries = [...boundaries].sort((a, b) => a - b);
      account.firstPaid = firstPaid;
      account.paidAtFirst = firstPaid === null ? { n: 0, cents: 0 } : payingAt(account, this.prices, firstPaid);
      this.countFirstPaid(account, 1);
      this.accounts.set(r.id, account);
      this.evaluate(account);
    }
    for (const id of ids ?? []) {
      const gone = this.accounts.get(id);
      if (byAccount.has(id) || !gone) continue;
      this.countFirstPaid(gone, -1);
      this.count(gone.contribution, -1);
      gone.version++;
      this.accounts.delete(id);
    }
  }

  /**
   * Moves the clock to (now, now - 30 days) as the refresh's snapshot reads them, re-evaluating the
   * accounts with a boundary passed. A clock that went back (it should not) re-evaluates every account.
   */
  advance(now: number, before: number): void {
    const back = now < this.now || before < this.before;
    this.now = now;
    this.before = before;
    const due = new Set<Account>();
    if (back) for (const a of this.accounts.values()) due.add(a);
    this.dueNow.popDue(now, due);
    this.dueBefore.popDue(before, due);
    for (const a of due) this.evaluate(a);
    this.compact();
  }

  /**
   * Every evaluation pushes an account's next boundaries and leaves its earlier entries stale until their
   * time comes; when stale entries outnumber the accounts, the heaps are rebuilt from the accounts
   * (O(accounts), amortised over at least as many evaluations).
   */
  compact(): void {
    if (this.dueNow.size + this.dueBefore.size <= 4 * this.accounts.size + 1024) return;
    this.dueNow.clear();
    this.dueBefore.clear();
    for (const a of this.accounts.values()) {
      const nextNow = nextBoundary(a.boundaries, this.now);
      if (nextNow !== null) this.dueNow.push(nextNow, a);
      const nextBefore = nextBoundary(a.boundaries, this.before);
      if (nextBefore !== null) this.dueBefore.push(nextBefore, a);
    }
  }

  /** The account's contribution at the current instants, in place of its last one, and its next boundaries. */
  private evaluate(a: Account): void {
    this.count(a.contribution, -1);
    const now = payingAt(a, this.prices, this.now);
    const before = payingAt(a, this.prices, this.before);
    const at = this.baselineAt === null ? { n: 0, cents: 0 } : payingAt(a, this.prices, this.baselineAt);
    a.contribution = {
      nNow: now.n,
      centsNow: now.cents,
      nBefore: before.n,
      centsBefore: before.cents,
      nAt: at.n,
      centsAt: at.cents,
      livePlan: a.deletedAt === null ? a.entitlementPlan : null,
    };
    this.count(a.contribution, 1);
    a.version++;
    const nextNow = nextBoundary(a.boundaries, this.now);
    if (nextNow !== null) this.dueNow.push(nextNow, a);
    const nextBefore = nextBoundary(a.boundaries, this.before);
    if (nextBefore !== null) this.dueBefore.push(nextBefore, a);
  }

  private count(c: Contribution, sign: 1 | -1): void {
    const t = this.totals;
    t.nNow += sign * c.nNow;
    t.centsNow += sign * c.centsNow;
    t.nBefore += sign * c.nBefore;
    t.centsBefore += sign * c.centsBefore;
    t.nAt += sign * c.nAt;
    t.centsAt += sign * c.centsAt;
    // As the SQL joins them: each paying-then row with each paying-now row of the same account.
    t.retainedCents += sign * c.nBefore * c.centsNow;
    t.churned += sign * (c.nNow === 0 ? c.nBefore : 0);
    if (c.livePlan !== null) this.livePlans.set(c.livePlan, (this.livePlans.get(c.livePlan) ?? 0) + sign);
  }

  /** Adds (1) or takes out (-1) the account's part of the totals under its first paying instant. */
  private countFirstPaid(a: Account, sign: 1 | -1): void {
    const at = a.firstPaid;
    if (at === null) return;
    const held = this.byFirstPaid.get(at) ?? { accounts: 0, n: 0, cents: 0 };
    held.accounts += sign;
    held.n += sign * a.paidAtFirst.n;
    held.cents += sign * a.paidAtFirst.cents;
    if (held.accounts > 0) {
      this.byFirstPaid.set(at, held);
      if (
        sign === 1 &&
        this.earliestFirstPaid !== undefined &&
        (this.earliestFirstPaid === null || at < this.earliestFirstPaid)
      )
        this.earliestFirstPaid = at;
      return;
    }
    this.byFirstPaid.delete(at);
    if (at === this.earliestFirstPaid) this.earliestFirstPaid = undefined;
  }

  /**
   * The ARPA at the start of the data: the accounts paying at the first instant any paid (and that instant
   * is not in the future). Only the accounts whose own first paying instant is that one can pay then.
   */
  dataStartArpa(): { n: number; cents: number } | null {
    if (this.earliestFirstPaid === undefined) {
      // Its last account left (or changed its first paying instant): the next one, over the distinct instants.
      let earliest: number | null = null;
      for (const at of this.byFirstPaid.keys()) if (earliest === null || at < earliest) earliest = at;
      this.earliestFirstPaid = earliest;
    }
    const at = this.earliestFirstPaid;
    if (at === null || at > this.now) return null;
    const { n, cents } = this.byFirstPaid.get(at)!;
    return { n, cents };
  }
}

/**
 * Slow-moving business gauges: conversion funnels, revenue and the executive scorecard (MRR growth, NRR,
 * logo churn, ARPA uplift, overage share), pricing accuracy, carrier documents and tenants by plan. Revenue,
 * the ARPA baseline and tenants by plan come from RevenueModel (O(changes) per refresh); the rest is read
 * by SQL bounded by an index (30-day windows) or a small reference table, in one round trip. Runs once per
 * EXPORTER_SLOW_REFRESH_MS in the background.
 */
export class BusinessCollector implements Collector {
  readonly name = 'business';
  readonly intervalMs: number;
  private model: RevenueModel;
  private refreshes = 0;

  constructor(private readonly ctx: CollectorContext) {
    this.intervalMs = ctx.settings.EXPORTER_SLOW_REFRESH_MS;
    this.model = this.newModel();
  }

  private get settings() {
    return this.ctx.settings;
  }

  private newModel(): RevenueModel {
    const at = this.settings.KPI_ARPA_BASELINE_AT;
    return new RevenueModel(at ? at.getTime() * 1000 : null);
  }

  async refresh(): Promise<void> {
    const { pool, metrics } = this.ctx;
    const grace = this.settings.EXPORTER_GAP_GRACE_SECONDS;
    const cursor = this.model.cursor;
    // Everything is read in one REPEATABLE READ snapshot at one now(), in one round trip after BEGIN (two
    // when accounts changed): the windowed KPIs, the ledger past the cursor, and on a full read the plans
    // and every account. The model changes only after the reads all succeeded (`apply`), so a failed
    // refresh leaves it as it was.
    const { windowed, apply, again } = await withTransaction<{
      windowed: QueryResult[];
      apply: () => void;
      again?: boolean;
    }>(pool, 'REPEATABLE READ', async (client) => {
      const full = cursor === null;
      const statements = [
        WINDOWED_SQL,
        full
          ? `SELECT ${lookbackSql(grace)}::text AS from_id; ${ledgerSql(lookbackSql(grace), [])};
             SELECT id, (price_monthly * 100)::int8::text AS cents FROM plans ORDER BY id;
             ${ACCOUNTS_SQL.replaceAll('$1', 'NULL')}`
          : ledgerSql(String(cursor.watermark), cursor.gaps),
      ];
      const results = (await client.query(statements.join(';\n'))) as unknown as QueryResult[];
      const clock = results[0]!.rows[0] as { now_us: string; before_us: string };
      const now = Number(clock.now_us);
      const before = Number(clock.before_us);
      const at = Date.now();
      if (full) {
        const from = Number((results[WINDOWED_STATEMENTS]!.rows[0] as { from_id: string }).from_id);
        const ledger = results[WINDOWED_STATEMENTS + 1]!.rows as { id: string }[];
        const plans = results[WINDOWED_STATEMENTS + 2]!.rows as { id: string; cents: string }[];
        const accounts = results[WINDOWED_STATEMENTS + 3]!.rows as AccountRow[];
        // The changes read are already in the accounts just read (same snapshot): only the cursor moves.
        const start = moveCursor(
          { watermark: from, gaps: [] },
          ledger.map((r) => Number(r.id)),
          at,
          grace * 1000
        ).cursor;
        return {
          windowed: results,
          apply: () => {
            this.model = this.newModel();
            this.model.now = now;
            this.model.before = before;
            this.model.rebuild(plans, accounts);
            this.model.cursor = start;
          },
        };
      }
      const ledger = results[WINDOWED_STATEMENTS]!.rows as { id: string; company_id: string | null }[];
      const moved = moveCursor(
        cursor,
        ledger.map((r) => Number(r.id)),
        at,
        grace * 1000
      );
      if (ledger.some((r) => r.company_id === null)) {
        // A change of every account (plans, a truncation): rebuilt from a full read next refresh, which
        // runs at once rather than waiting the slow interval.
        return {
          windowed: results,
          apply: () => {
            this.model = this.newModel();
          },
          again: true,
        };
      }
      const changed = [...new Set(ledger.map((r) => r.company_id!))];
      const rows = changed.length > 0 ? await loadAccounts(client, changed) : null;
      return {
        windowed: results,
        apply: () => {
          if (moved.abandoned > 0) metrics.abandonedIdGaps.inc({ collector: this.name }, moved.abandoned);
          metrics.openIdGaps.set({ collector: this.name }, moved.cursor.gaps.length);
          this.model.advance(now, before);
          if (rows) this.model.replace(rows, changed);
          this.model.compact();
          this.model.cursor = moved.cursor;
        },
      };
    });
    apply();
    if (again) return this.refresh();
    if (++this.refreshes % LEDGER_PURGE_EVERY === 0) {
      await pool.query(`DELETE FROM controlroom.revenue_changes WHERE at < now() - interval '${LEDGER_RETENTION}'`);
    }
    this.publish(windowed);
  }

  private publish(windowed: QueryResult[]): void {
    const { metrics } = this.ctx;
    const funnels = windowed[1]!.rows as { funnel: string; entered: string; converted: string }[];
    const variance = windowed[2]!.rows as { variance_ratio: number | null }[];
    const docs = windowed[3]!.rows as { kind: string; status: string; n: string }[];
    const overage = windowed[4]!.rows as { feature: string; units: string }[];

    const byFunnel = new Map(funnels.map((r) => [r.funnel, r]));
    const entered = FUNNELS.map((funnel) => ({ funnel, value: Number(byFunnel.get(funnel)?.entered ?? 0) }));
    const converted = FUNNELS.map((funnel) => ({ funnel, value: Number(byFunnel.get(funnel)?.converted ?? 0) }));
    metrics.funnelEntered.replace(entered.map(({ funnel, value }) => ({ labels: { funnel }, value })));
    metrics.funnelConverted.replace(converted.map(({ funnel, value }) => ({ labels: { funnel }, value })));
    // No cohort, no ratio: an absent series reads "no data" rather than a misleading 0%.
    metrics.conversionRatio.replace(
      FUNNELS.flatMap((funnel, i) =>
        entered[i]!.value > 0 ? [{ labels: { funnel }, value: converted[i]!.value / entered[i]!.value }] : []
      )
    );

    // Money is held in integer cents and divided here: cents / 100 is the same double as the numeric sum
    // SQL would send as text and Number() would parse (both are the nearest double to the exact value).
    const t = this.model.totals;
    const mrr = t.centsNow / 100;
    const paying = t.nNow;
    const mrrBefore = t.centsBefore / 100;
    const payingBefore = t.nBefore;
    metrics.mrr.replace([{ labels: {}, value: mrr }]);
    metrics.payingAccounts.replace([{ labels: {}, value: paying }]);
    const arpa = paying > 0 ? mrr / paying : undefined;
    metrics.arpa.replace(one(arpa));
    // A ratio over nothing is absent (no data), never 0 or NaN: a month that starts without revenue has no growth rate.
    metrics.mrrGrowth.replace(one(mrrBefore > 0 ? mrr / mrrBefore - 1 : undefined));
    metrics.netRevenueRetention.replace(one(mrrBefore > 0 ? t.retainedCents / 100 / mrrBefore : undefined));
    metrics.logoChurn.replace(one(payingBefore > 0 ? t.churned / payingBefore : undefined));

    const base =
      this.settings.KPI_ARPA_BASELINE_AT !== undefined ? { n: t.nAt, cents: t.centsAt } : this.model.dataStartArpa();
    const baselineArpa =
      this.settings.KPI_ARPA_BASELINE_DOLLARS ?? (base && base.n > 0 ? base.cents / 100 / base.n : undefined);
    metrics.arpaBaseline.replace(one(baselineArpa));
    metrics.arpaUplift.replace(one(arpa !== undefined && baselineArpa ? arpa / baselineArpa - 1 : undefined));

    // Billed overage in dollars is known only when every feature billed in the window has a unit price.
    const prices = this.settings.KPI_OVERAGE_UNIT_PRICES;
    const priced = overage.every((row) => prices[row.feature] !== undefined);
    const overageDollars = overage.reduce((sum, row) => sum + Number(row.units) * (prices[row.feature] ?? 0), 0);
    metrics.overageRevenueShare.replace(one(priced && mrr > 0 ? overageDollars / mrr : undefined));

    const ratio = variance[0]?.variance_ratio;
    metrics.quoteVariance.replace(ratio == null ? [] : [{ labels: {}, value: Number(ratio) }]);

    const docCounts = new Map(docs.map((r) => [`${r.kind}\u0000${r.status}`, Number(r.n)]));
    const kinds = [...new Set(docs.map((r) => r.kind))].sort();
    metrics.directoryDocs.replace(
      kinds.flatMap((kind) =>
        DOC_STATUSES.map((status) => ({
          labels: { kind, status },
          value: docCounts.get(`${kind}\u0000${status}`) ?? 0,
        }))
      )
    );

    metrics.companies.replace(
      this.model.plans.map((plan) => ({ labels: { plan }, value: this.model.livePlans.get(plan) ?? 0 }))
    );
  }
}
