import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { loadConfig } from '../../cli/config.ts';
import { withTransaction } from '../../core/db.ts';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';
import { testExporter } from '../../testing/exporter.ts';

// The executive scorecard against a month of hand-built business data. Every expected value below is
// worked out by hand from the rows, by the definitions in README "Metric contract", and asserted
// exactly as /metrics shows it.

const DAY = 86_400_000;
/** The seeded plans' monthly prices: starter $99, pro $299, enterprise $999, revoked (canceled) $0. */
type Plan = 'starter' | 'pro' | 'enterprise' | 'revoked';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => db.drop());
beforeEach(async () => {
  await db.pool.query(
    `TRUNCATE quotes, invoices, directory_docs, directory_companies, org_entitlements, companies RESTART IDENTITY CASCADE;
     DELETE FROM controlroom.entitlement_history; DELETE FROM controlroom.billing_meter_events`
  );
});

/** One clock for the whole test: every seeded instant is whole days before it, far from the 30-day edge. */
const now = new Date();
const daysAgo = (days: number) => new Date(now.getTime() - days * DAY);

interface AccountOptions {
  plan: Plan;
  startedDaysAgo: number;
  trialEndsDaysAgo?: number;
  subscribed?: boolean;
}

/** A TMS company whose entitlement (and so its history) starts `startedDaysAgo`. */
async function account(name: string, o: AccountOptions): Promise<string> {
  const { rows } = await db.pool.query<{ id: string }>(
    `INSERT INTO companies (name, created_at) VALUES ($1, $2) RETURNING id`,
    [name, daysAgo(o.startedDaysAgo)]
  );
  const id = rows[0]!.id;
  const subscribed = o.subscribed ?? true;
  await db.pool.query(
    `INSERT INTO org_entitlements (company_id, plan_id, started_at, trial_ends_at, stripe_customer_id, stripe_subscription_id)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [
      id,
      o.plan,
      daysAgo(o.startedDaysAgo),
      o.trialEndsDaysAgo === undefined ? null : daysAgo(o.trialEndsDaysAgo),
      subscribed ? `cus_${name}` : null,
      subscribed ? `sub_${name}` : null,
    ]
  );
  return id;
}

/** A change of the entitlement dated `days` ago, the way a replay of the TMS's history writes it. */
async function change(id: string, days: number, set: string, params: unknown[] = []): Promise<void> {
  await withTransaction(db.pool, 'READ COMMITTED', async (client) => {
    await client.query(`SELECT set_config('controlroom.effective_at', $1, true)`, [daysAgo(days).toISOString()]);
    await client.query(`UPDATE org_entitlements SET ${set} WHERE company_id = $1`, [id, ...params]);
  });
}

/**
 * The month (30 days before now = t0):
 *   A  starter since 60 d, upgraded to pro 10 d ago                       t0 99   now 299  (expansion)
 *   B  enterprise since 90 d, downgraded to pro 5 d ago                    t0 999  now 299  (contraction)
 *   C  pro since 45 d, company soft-deleted 12 d ago                       t0 299  now 0    (churned logo)
 *   D  pro since 40 d, payment failed 3 d ago, grace until now + 4 d       t0 299  now 299  (past due inside grace)
 *   E  starter since 50 d, failed 10 d ago, grace over 3 d ago: past_due   t0 99   now 0    (churned)
 *   E2 pro since 35 d, failed 8 d ago, grace ended 1 h ago (no tick yet)   t0 299  now 0    (outside grace: churned)
 *   F  starter, new 20 d ago                                               t0 -    now 99   (new)
 *   G  pro trial from 25 d, ended 11 d ago, converted                      t0 -    now 299  (new)
 *   H  pro trial still running, no subscription                           t0 -    now -
 *   I  enterprise since 100 d, canceled 20 d ago (plan revoked)            t0 999  now 0    (churned)
 *   J  pro since 80 d, canceled 25 d ago, subscribed again 2 d ago         t0 299  now 299  (reactivated: retained)
 *   K  pro since 100 d, in grace at t0 (failed 33 d ago, paid 28 d ago)    t0 299  now 299  (inside grace at t0)
 *   L  starter since 70 d, past_due at t0 (grace over 33 d ago), paid 15 d t0 -    now 99   (outside grace at t0)
 *   M  starter trial ended 2 d ago, never subscribed                        t0 -    now -
 *   N  starter since 45 d, marked past_due 1 d ago with grace until now + 2 d t0 99  now 99  (past due inside grace)
 */
async function seedMonth(): Promise<void> {
  const a = await account('A', { plan: 'starter', startedDaysAgo: 60 });
  await change(a, 10, `plan_id = 'pro'`);
  const b = await account('B', { plan: 'enterprise', startedDaysAgo: 90 });
  await change(b, 5, `plan_id = 'pro'`);
  const c = await account('C', { plan: 'pro', startedDaysAgo: 45 });
  await db.pool.query(`UPDATE companies SET deleted_at = $2 WHERE id = $1`, [c, daysAgo(12)]);
  const d = await account('D', { plan: 'pro', startedDaysAgo: 40 });
  await change(d, 3, `billing_status = 'grace', grace_until = $2`, [daysAgo(-4)]);
  const e = await account('E', { plan: 'starter', startedDaysAgo: 50 });
  await change(e, 10, `billing_status = 'grace', grace_until = $2`, [daysAgo(3)]);
  await change(e, 3, `billing_status = 'past_due'`);
  const e2 = await account('E2', { plan: 'pro', startedDaysAgo: 35 });
  await change(e2, 8, `billing_status = 'grace', grace_until = $2`, [new Date(now.getTime() - 3_600_000)]);
  await account('F', { plan: 'starter', startedDaysAgo: 20 });
  await account('G', { plan: 'pro', startedDaysAgo: 25, trialEndsDaysAgo: 11 });
  await account('H', { plan: 'pro', startedDaysAgo: 9, trialEndsDaysAgo: -5, subscribed: false });
  const i = await account('I', { plan: 'enterprise', startedDaysAgo: 100 });
  await change(i, 20, `billing_status = 'canceled', plan_id = 'revoked'`);
  const j = await account('J', { plan: 'pro', startedDaysAgo: 80 });
  await change(j, 25, `billing_status = 'canceled', plan_id = 'revoked'`);
  await change(j, 2, `billing_status = 'active', plan_id = 'pro'`);
  const k = await account('K', { plan: 'pro', startedDaysAgo: 100 });
  await change(k, 33, `billing_status = 'grace', grace_until = $2`, [daysAgo(26)]);
  await change(k, 28, `billing_status = 'active', grace_until = NULL`);
  const l = await account('L', { plan: 'starter', startedDaysAgo: 70 });
  await change(l, 40, `billing_status = 'grace', grace_until = $2`, [daysAgo(33)]);
  await change(l, 33, `billing_status = 'past_due'`);
  await change(l, 15, `billing_status = 'active', grace_until = NULL`);
  await account('M', { plan: 'starter', startedDaysAgo: 16, trialEndsDaysAgo: 2, subscribed: false });
  const n = await account('N', { plan: 'starter', startedDaysAgo: 45 });
  await change(n, 1, `billing_status = 'past_due', grace_until = $2`, [daysAgo(-2)]);
}

// Worked out from the table above.
const MRR_T0 = 99 + 999 + 299 + 299 + 99 + 299 + 999 + 299 + 299 + 99; // A B C D E E2 I J K N = 3790
const PAYING_T0 = 10;
const MRR_NOW = 299 + 299 + 299 + 99 + 299 + 299 + 299 + 99 + 99; // A B D F G J K L N = 2091
const PAYING_NOW = 9;
const RETAINED = 299 + 299 + 0 + 299 + 0 + 0 + 0 + 299 + 299 + 99; // the t0 cohort now = 1594
const CHURNED = 4; // C E E2 I
const BASELINE = (999 + 299) / 2; // I and K started paying at the same first instant, 100 d ago

describe('executive scorecard', () => {
  test('a month of business data: MRR, growth, NRR, logo churn, ARPA and its uplift, overage share', async () => {
    assert.equal(MRR_T0, 3790);
    assert.equal(MRR_NOW, 2091);
    await seedMonth();
    await db.pool.query(
      `INSERT INTO controlroom.billing_meter_events
         (identifier, company_id, feature, event_name, stripe_customer_id, qty, units_from, period_start, event_timestamp, sent_at)
       SELECT 'cr:' || n, c.id, f, f || '_overage', 'cus_A', q, 0, ts::date, ts, CASE WHEN sent THEN now() END
         FROM companies c,
              (VALUES (1, 'rates', 40, $1::timestamptz, true), (2, 'bulk_rating', 3, $2::timestamptz, false),
                      (3, 'rates', 10, $3::timestamptz, true)) AS v(n, f, q, ts, sent)
        WHERE c.name = 'A'`,
      [daysAgo(5), daysAgo(1), daysAgo(40)]
    );
    const exporter = testExporter(db.pool, { KPI_OVERAGE_UNIT_PRICES: { rates: 0.5, bulk_rating: 20 } });
    await exporter.runner.refreshAll();
    const m = await exporter.scrape();

    assert.equal(m.get('tms_mrr_dollars'), MRR_NOW);
    assert.equal(m.get('tms_paying_accounts'), PAYING_NOW);
    assert.equal(m.get('tms_arpa_dollars'), MRR_NOW / PAYING_NOW);
    assert.equal(m.get('tms_mrr_growth_ratio'), MRR_NOW / MRR_T0 - 1);
    assert.equal(m.get('tms_net_revenue_retention_ratio'), RETAINED / MRR_T0);
    assert.equal(m.get('tms_logo_churn_ratio'), CHURNED / PAYING_T0);
    assert.equal(m.get('tms_arpa_baseline_dollars'), BASELINE);
    assert.equal(m.get('tms_arpa_uplift_ratio'), MRR_NOW / PAYING_NOW / BASELINE - 1);
    // 40 quotes at $0.50 and 3 bulk jobs at $20 in the last 30 days (queued or sent); the 10 from 40 days ago are outside.
    assert.equal(m.get('tms_overage_revenue_share_ratio'), (40 * 0.5 + 3 * 20) / MRR_NOW);
  });

  test('the ARPA baseline can be set in dollars or as an instant', async () => {
    await seedMonth();
    const inDollars = testExporter(db.pool, { KPI_ARPA_BASELINE_DOLLARS: 200 });
    await inDollars.runner.refreshAll();
    assert.equal(await inDollars.value('tms_arpa_baseline_dollars'), 200);
    assert.equal(await inDollars.value('tms_arpa_uplift_ratio'), MRR_NOW / PAYING_NOW / 200 - 1);

    const atInstant = testExporter(db.pool, { KPI_ARPA_BASELINE_AT: daysAgo(30) });
    await atInstant.runner.refreshAll();
    assert.equal(await atInstant.value('tms_arpa_baseline_dollars'), MRR_T0 / PAYING_T0);
    assert.equal(await atInstant.value('tms_arpa_uplift_ratio'), MRR_NOW / PAYING_NOW / (MRR_T0 / PAYING_T0) - 1);
  });

  test('overage share: 0 without overage, absent while a billed feature has no unit price', async () => {
    await account('P', { plan: 'pro', startedDaysAgo: 60 });
    const exporter = testExporter(db.pool, { KPI_OVERAGE_UNIT_PRICES: { rates: 0.5 } });
    await exporter.runner.refreshAll();
    assert.equal(await exporter.value('tms_overage_revenue_share_ratio'), 0);

    await db.pool.query(
      `INSERT INTO controlroom.billing_meter_events
         (identifier, company_id, feature, event_name, stripe_customer_id, qty, units_from, period_start, event_timestamp)
       SELECT 'cr:x', id, 'directory', 'directory_overage', 'cus_P', 5, 0, current_date, now() - interval '1 day' FROM companies`
    );
    await exporter.runner.refreshAll();
    assert.equal(
      await exporter.value('tms_overage_revenue_share_ratio'),
      undefined,
      'directory has no unit price: unknown, not 0'
    );
    assert.equal(await exporter.value('tms_mrr_dollars'), 299);
  });

  test('a month that starts with no paying account: growth, NRR and churn are absent, not 0 or NaN', async () => {
    await account('New1', { plan: 'pro', startedDaysAgo: 10 });
    await account('New2', { plan: 'starter', startedDaysAgo: 3 });
    const exporter = testExporter(db.pool, { KPI_OVERAGE_UNIT_PRICES: {} });
    await exporter.runner.refreshAll();
    const m = await exporter.scrape();
    assert.equal(m.get('tms_mrr_dollars'), 398);
    assert.equal(m.get('tms_arpa_dollars'), 199);
    assert.equal(m.get('tms_arpa_baseline_dollars'), 299, 'New1 paid first, alone');
    assert.equal(m.get('tms_arpa_uplift_ratio'), 199 / 299 - 1);
    assert.equal(m.get('tms_overage_revenue_share_ratio'), 0);
    for (const name of ['tms_mrr_growth_ratio', 'tms_net_revenue_retention_ratio', 'tms_logo_churn_ratio']) {
      assert.equal(m.has(name), false, `${name} is absent`);
    }
  });

  test('no paying account at all: only the MRR and account count, both 0', async () => {
    await account('Trial', { plan: 'pro', startedDaysAgo: 5, trialEndsDaysAgo: -9, subscribed: false });
    const exporter = testExporter(db.pool);
    await exporter.runner.refreshAll();
    const m = await exporter.scrape();
    assert.equal(m.get('tms_mrr_dollars'), 0);
    assert.equal(m.get('tms_paying_accounts'), 0);
    for (const name of [
      'tms_arpa_dollars',
      'tms_mrr_growth_ratio',
      'tms_net_revenue_retention_ratio',
      'tms_logo_churn_ratio',
      'tms_arpa_baseline_dollars',
      'tms_arpa_uplift_ratio',
      'tms_overage_revenue_share_ratio',
    ]) {
      assert.equal(m.has(name), false, `${name} is absent`);
    }
  });

  test('conversion funnels and pricing variance over their 30-day windows', async () => {
    const g = await account('G', { plan: 'pro', startedDaysAgo: 25, trialEndsDaysAgo: 11 });
    await account('M', { plan: 'starter', startedDaysAgo: 16, trialEndsDaysAgo: 2, subscribed: false });
    await account('Old', { plan: 'starter', startedDaysAgo: 60, trialEndsDaysAgo: 46 });
    await account('H', { plan: 'pro', startedDaysAgo: 9, trialEndsDaysAgo: -5, subscribed: false });
    // quote_to_book: every quote sent in the window (sent, accepted, rejected, expired; not drafts) -> accepted.
    await db.pool.query(
      `INSERT INTO quotes (company_id, status, proposed_rate, created_at)
       SELECT $1, s, r, now() - make_interval(days => d)
         FROM (VALUES ('accepted', 1000, 1), ('accepted', 2000, 2), ('accepted', 500, 3), ('sent', 800, 1), ('sent', 900, 4),
                      ('rejected', 700, 5), ('rejected', 600, 6), ('rejected', 650, 7), ('expired', 750, 8),
                      ('draft', 100, 1), ('draft', 100, 2), ('draft', 100, 3), ('draft', 100, 4),
                      ('accepted', 1200, 40), ('accepted', 0, 2)) AS v(s, r, d)`,
      [g]
    );
    // Invoices of quotes 1-3 (+8%, -5%, 0%) in the window; quote 14's 40 days ago; quote 15 quoted 0 (no ratio).
    await db.pool.query(
      `INSERT INTO invoices (quote_id, amount, created_at) VALUES
         (1, 1080, now() - interval '1 day'), (2, 1900, now()), (3, 500, now()),
         (14, 2400, now() - interval '35 days'), (15, 50, now())`
    );
    await db.pool.query(
      `INSERT INTO directory_companies (company_id, company_name, status, invited_at, onboarded_at)
       SELECT $1, n, s, now() - make_interval(days => d), CASE WHEN s = 'onboarded' THEN now() END
         FROM (VALUES ('c1', 'onboarded', 3), ('c2', 'invited', 2), ('c3', 'invited', 10), ('c4', 'invited', 29),
                      ('c5', 'onboarded', 31)) AS v(n, s, d)`,
      [g]
    );
    const exporter = testExporter(db.pool);
    await exporter.runner.refreshAll();
    const m = await exporter.scrape();
    assert.equal(m.get('tms_funnel_entered{funnel="quote_to_book"}'), 10);
    assert.equal(m.get('tms_funnel_converted{funnel="quote_to_book"}'), 4);
    assert.equal(m.get('tms_conversion_ratio{funnel="quote_to_book"}'), 4 / 10);
    // Trials that ended in the last 30 days: G (subscribed) and M (not); Old ended 46 days ago, H still runs.
    assert.equal(m.get('tms_conversion_ratio{funnel="trial_to_paid"}'), 1 / 2);
    assert.equal(m.get('tms_conversion_ratio{funnel="invite_to_onboard"}'), 1 / 4);
    const variance = m.get('tms_quote_variance_ratio')!;
    assert.ok(Math.abs(variance - (0.08 + 0.05 + 0) / 3) < 1e-12, `pricing variance ${variance}`);
  });
});

/** The revenue series of a scrape (the ones the in-memory revenue model produces). */
const REVENUE_SERIES = [
  'tms_mrr_dollars',
  'tms_paying_accounts',
  'tms_arpa_dollars',
  'tms_mrr_growth_ratio',
  'tms_net_revenue_retention_ratio',
  'tms_logo_churn_ratio',
  'tms_arpa_baseline_dollars',
  'tms_arpa_uplift_ratio',
  'tms_companies',
];
const revenueOf = (m: Map<string, number>) =>
  Object.fromEntries([...m].filter(([k]) => REVENUE_SERIES.some((name) => k === name || k.startsWith(`${name}{`))));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('revenue kept in memory, refresh by refresh', () => {
  test('equals a full read after every change and as time alone moves accounts in and out of paying', async () => {
    await seedMonth();
    const kept = testExporter(db.pool);
    const afresh = async () => {
      const e = testExporter(db.pool);
      await e.runner.refreshOne('business');
      return revenueOf(await e.scrape());
    };
    const same = async (what: string) => {
      await kept.runner.refreshOne('business');
      assert.deepEqual(revenueOf(await kept.scrape()), await afresh(), what);
    };
    await same('first refresh (a full read)');
    assert.equal(await kept.value('tms_mrr_dollars'), MRR_NOW);

    // Changes the ledger carries: an upgrade, a cancellation, a soft deletion, a new account, a replay
    // dated before the month, an entitlement removed.
    const ids = new Map(
      (await db.pool.query<{ id: string; name: string }>(`SELECT id, name FROM companies`)).rows.map((r) => [
        r.name,
        r.id,
      ])
    );
    await change(ids.get('F')!, 0, `plan_id = 'enterprise'`);
    await change(ids.get('G')!, 0, `billing_status = 'canceled', plan_id = 'revoked'`);
    await db.pool.query(`UPDATE companies SET deleted_at = now() WHERE id = $1`, [ids.get('N')]);
    await account('New', { plan: 'pro', startedDaysAgo: 1 });
    await change(ids.get('A')!, 40, `plan_id = 'enterprise'`);
    await db.pool.query(`DELETE FROM org_entitlements WHERE company_id = $1`, [ids.get('J')]);
    await same('after changes');
    assert.notEqual(await kept.value('tms_mrr_dollars'), MRR_NOW);

    // A change committed after a later one (its ledger id is lower): found in the cursor's gap.
    const slow = await db.pool.connect();
    try {
      await slow.query('BEGIN');
      await slow.query(`UPDATE org_entitlements SET plan_id = 'starter' WHERE company_id = $1`, [ids.get('K')]);
      await change(ids.get('L')!, 0, `plan_id = 'pro'`);
      await kept.runner.refreshOne('business');
      await slow.query('COMMIT');
    } finally {
      slow.release();
    }
    await same('after a change committed late');

    // A plan's price changes: a ledger row naming no account, every account read again.
    try {
      await db.pool.query(`UPDATE plans SET price_monthly = price_monthly + 1 WHERE id = 'pro'`);
      await same('after a price change');
    } finally {
      await db.pool.query(`UPDATE plans SET price_monthly = price_monthly - 1 WHERE id = 'pro'`);
    }
    await same('after the price is back');

    // Time alone: boundaries 2 s ahead, now and 30 days ago (a grace period and a trial end, a deletion
    // takes effect, a state begins at the 30-day-ago instant).
    const soon = Date.now() + 2_000;
    /** `at` in the helpers' unit: days before the file's clock. */
    const daysBefore = (at: number) => (now.getTime() - at) / DAY;
    await change(ids.get('D')!, 0, `grace_until = $2`, [new Date(soon)]);
    await account('Trial ends', { plan: 'pro', startedDaysAgo: 5, trialEndsDaysAgo: daysBefore(soon) });
    await db.pool.query(`UPDATE companies SET deleted_at = $2 WHERE id = $1`, [ids.get('B'), new Date(soon)]);
    const lateStart = await account('Late start', { plan: 'enterprise', startedDaysAgo: 60 });
    await change(lateStart, daysBefore(soon - 30 * DAY), `plan_id = 'starter'`);
    await same('before the boundaries');
    // A change to an account whose boundary is still ahead: its pending boundary belongs to its new state.
    await change(ids.get('D')!, 0, `plan_id = 'enterprise'`);
    await same('a change before a boundary');
    const before = revenueOf(await kept.scrape());
    await sleep(Math.max(0, soon + 1_000 - Date.now()));
    await same('after the boundaries passed, with no change written');
    assert.notDeepEqual(revenueOf(await kept.scrape()), before, 'time alone changed the revenue');
  });
});

describe('entitlement history', () => {
  test('records a change of what an account pays, not of other fields; TRUNCATE ends every current state', async () => {
    const id = await account('A', { plan: 'starter', startedDaysAgo: 10 });
    const states = async () =>
      (
        await db.pool.query<{ plan_id: string; open: boolean }>(
          `SELECT plan_id, valid_to IS NULL AS open FROM controlroom.entitlement_history WHERE company_id = $1 ORDER BY id`,
          [id]
        )
      ).rows;
    await db.pool.query(
      `UPDATE org_entitlements SET current_period_end = now() + interval '20 days', last_stripe_event_at = now() WHERE company_id = $1`,
      [id]
    );
    assert.deepEqual(await states(), [{ plan_id: 'starter', open: true }]);
    await db.pool.query(`UPDATE org_entitlements SET plan_id = 'pro' WHERE company_id = $1`, [id]);
    assert.deepEqual(await states(), [
      { plan_id: 'starter', open: false },
      { plan_id: 'pro', open: true },
    ]);
    await db.pool.query(`TRUNCATE org_entitlements`);
    assert.deepEqual(await states(), [
      { plan_id: 'starter', open: false },
      { plan_id: 'pro', open: false },
    ]);
    // The TMS can insert the account again, even with its old start: the new state begins where the
    // earlier ones ended, so no instant has two states (the account would count twice).
    await db.pool.query(
      `INSERT INTO org_entitlements (company_id, plan_id, started_at) VALUES ($1, 'enterprise', $2)`,
      [id, daysAgo(10)]
    );
    assert.equal((await states()).filter((s) => s.open).length, 1);
    const { rows: overlaps } = await db.pool.query(
      `SELECT count(*)::int AS n FROM controlroom.entitlement_history a JOIN controlroom.entitlement_history b
          ON a.company_id = b.company_id AND a.id < b.id
         AND tstzrange(a.valid_from, a.valid_to) && tstzrange(b.valid_from, b.valid_to)`
    );
    assert.equal(overlaps[0].n, 0);
    // A replayed change dated before the current state began starts where the current state began.
    await change(id, 30, `plan_id = 'starter'`);
    const { rows: paying } = await db.pool.query(
      `SELECT count(*)::int AS n FROM controlroom.paying_accounts_at(now() - interval '5 days')`
    );
    assert.equal(paying[0].n, 1);
  });
});

describe('scorecard configuration', () => {
  test('parses the baseline and unit prices; a bad value stops start-up naming the variable', () => {
    const config = loadConfig({
      KPI_ARPA_BASELINE_AT: '2026-06-01T00:00:00Z',
      KPI_OVERAGE_UNIT_PRICES: '{"rates":0.5,"bulk_rating":20}',
    });
    assert.deepEqual(config.KPI_ARPA_BASELINE_AT, new Date('2026-06-01T00:00:00Z'));
    assert.deepEqual(config.KPI_OVERAGE_UNIT_PRICES, { rates: 0.5, bulk_rating: 20 });
    assert.deepEqual(loadConfig({}).KPI_OVERAGE_UNIT_PRICES, {});
    assert.throws(() => loadConfig({ KPI_ARPA_BASELINE_AT: 'June 1st' }), /KPI_ARPA_BASELINE_AT: an ISO 8601 instant/);
    assert.throws(
      () => loadConfig({ KPI_OVERAGE_UNIT_PRICES: '{"rates":"cheap"}' }),
      /KPI_OVERAGE_UNIT_PRICES: a JSON object/
    );
    assert.throws(() => loadConfig({ KPI_OVERAGE_UNIT_PRICES: '[1]' }), /KPI_OVERAGE_UNIT_PRICES/);
    assert.throws(() => loadConfig({ KPI_ARPA_BASELINE_DOLLARS: '0' }), /KPI_ARPA_BASELINE_DOLLARS/);
    assert.throws(
      () => loadConfig({ KPI_ARPA_BASELINE_DOLLARS: '120', KPI_ARPA_BASELINE_AT: '2026-06-01T00:00:00Z' }),
      /KPI_ARPA_BASELINE_AT: set either KPI_ARPA_BASELINE_DOLLARS or KPI_ARPA_BASELINE_AT, not both/
    );
  });
});

describe('the ARPA baseline kept in memory', () => {
  test('moves to the next first payer when the accounts that paid first no longer count', async () => {
    const first = await account('First', { plan: 'pro', startedDaysAgo: 10 });
    await account('Second', { plan: 'starter', startedDaysAgo: 3 });
    const kept = testExporter(db.pool);
    await kept.runner.refreshOne('business');
    assert.equal(await kept.value('tms_arpa_baseline_dollars'), 299, 'First paid first, alone');

    // Deleted with effect from before it started: it never paid, so Second is the first payer.
    await db.pool.query(`UPDATE companies SET deleted_at = $2 WHERE id = $1`, [first, daysAgo(11)]);
    await kept.runner.refreshOne('business');
    assert.equal((await kept.value('controlroom_exporter_collect_errors_total', { collector: 'business' })) ?? 0, 0);
    assert.equal(await kept.value('tms_arpa_baseline_dollars'), 99, 'Second paid first now');
    const afresh = testExporter(db.pool);
    await afresh.runner.refreshOne('business');
    assert.equal(await afresh.value('tms_arpa_baseline_dollars'), 99);

    // Undeleted: First is back as the first payer.
    await db.pool.query(`UPDATE companies SET deleted_at = NULL WHERE id = $1`, [first]);
    await kept.runner.refreshOne('business');
    assert.equal(await kept.value('tms_arpa_baseline_dollars'), 299);
  });
});
