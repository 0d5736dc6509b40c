import type { Collector } from '../runner.ts';
import type { CollectorContext } from './context.ts';

export const FUNNELS = ['quote_to_book', 'trial_to_paid', 'invite_to_onboard'] as const;
export const DOC_STATUSES = ['valid', 'expiring_soon', 'expired'] as const;

const one = (value: number | undefined) => (value === undefined ? [] : [{ labels: {}, value }]);

/** Money as numeric text, divided in JS: the ARPA is the same double as mrr / accounts computed anywhere. */
interface BaselineRow {
  mrr: string | null;
  accounts: string;
}

interface RevenueRow {
  mrr_now: string;
  paying_now: string;
  mrr_before: string;
  paying_before: string;
  retained_mrr: string;
  churned_accounts: string;
}

/**
 * Revenue now and 30 days ago, by the one definition of a paying account at an instant
 * (controlroom.paying_accounts_at, migration 1700000000021). One statement, so both instants use the same
 * now(). Money is summed as numeric and sent as text: no float rounding before the ratios.
 *   retained_mrr:     MRR now of the accounts that paid 30 days ago (0 for those that pay nothing now)
 *   churned_accounts: accounts that paid 30 days ago and pay nothing now
 * Cost: two lookups of the entitlement history (one row per account state, indexed by interval).
 */
const REVENUE_SQL = `
  WITH paying_now AS MATERIALIZED (SELECT company_id, mrr_dollars FROM controlroom.paying_accounts_at(now())),
       paying_before AS MATERIALIZED (SELECT company_id, mrr_dollars FROM controlroom.paying_accounts_at(now() - interval '30 days'))
  SELECT (SELECT coalesce(sum(mrr_dollars), 0) FROM paying_now)::text AS mrr_now,
         (SELECT count(*) FROM paying_now)::text AS paying_now,
         (SELECT coalesce(sum(mrr_dollars), 0) FROM paying_before)::text AS mrr_before,
         (SELECT count(*) FROM paying_before)::text AS paying_before,
         (SELECT coalesce(sum(n.mrr_dollars), 0) FROM paying_before b JOIN paying_now n USING (company_id))::text AS retained_mrr,
         (SELECT count(*) FROM paying_before b WHERE NOT EXISTS (SELECT 1 FROM paying_now n WHERE n.company_id = b.company_id))::text
           AS churned_accounts`;

/** Overage units metered (queued or sent: the outbox bills each row once) over the last 30 days, by feature; bounded by the event_timestamp index. */
const OVERAGE_SQL = `
  SELECT feature, sum(qty)::text AS units
    FROM controlroom.billing_meter_events
   WHERE event_timestamp > now() - interval '30 days' AND event_timestamp <= now()
   GROUP BY feature`;

/**
 * The default ARPA baseline: the ARPA at the start of the data, i.e. of the accounts paying at the first
 * instant any account paid (a history state's start, or its trial's end if later, while the state, the
 * company and a grace period last). NULL when no account ever paid.
 *
 * Bounded, not a scan of the history: the states that could pay are read in the order of their paying
 * start from entitlement_history_paying_start_idx (migration 1700000000036, the same expression and
 * predicate), and the first that really paid then ends the walk; the accounts paying at that early
 * instant are then one look-up of the interval index that reads only the states begun by then.
 */
const DATA_START_ARPA_SQL = `
  WITH first_paid AS (
    SELECT greatest(h.valid_from, h.trial_ends_at) AS at
      FROM controlroom.entitlement_history h
      JOIN companies c ON c.id = h.company_id
     WHERE h.subscribed AND h.billing_status IN ('active', 'grace', 'past_due')
       AND greatest(h.valid_from, h.trial_ends_at) <= now()
       AND (h.valid_to IS NULL OR greatest(h.valid_from, h.trial_ends_at) < h.valid_to)
       AND (c.deleted_at IS NULL OR greatest(h.valid_from, h.trial_ends_at) < c.deleted_at)
       AND (h.billing_status = 'active' OR h.grace_until > greatest(h.valid_from, h.trial_ends_at))
     ORDER BY greatest(h.valid_from, h.trial_ends_at)
     LIMIT 1
  )
  SELECT sum(p.mrr_dollars)::text AS mrr, count(*)::text AS accounts
    FROM first_paid f CROSS JOIN LATERAL controlroom.paying_accounts_at(f.at) p`;

/**
 * Slow-moving business gauges: conversion funnels, revenue and the executive scorecard (MRR growth, NRR,
 * logo churn, ARPA uplift, overage share), pricing accuracy, carrier documents and tenants by plan. Each query is bounded by an index (30-day windows, small reference tables), and runs
 * once per EXPORTER_SLOW_REFRESH_MS in the background.
 */
export class BusinessCollector implements Collector {
  readonly name = 'business';
  readonly intervalMs: number;

  constructor(private readonly ctx: CollectorContext) {
    this.intervalMs = ctx.settings.EXPORTER_SLOW_REFRESH_MS;
  }

  private get settings() {
    return this.ctx.settings;
  }

  /** The ARPA baseline's query: none when it is configured in dollars, the ARPA at a configured instant, else at the start of the data. */
  private baselineQuery(): Promise<{ rows: BaselineRow[] }> {
    const { pool } = this.ctx;
    if (this.settings.KPI_ARPA_BASELINE_DOLLARS !== undefined) return Promise.resolve({ rows: [] });
    if (this.settings.KPI_ARPA_BASELINE_AT) {
      return pool.query<BaselineRow>(
        `SELECT sum(mrr_dollars)::text AS mrr, count(*)::text AS accounts FROM controlroom.paying_accounts_at($1)`,
        [this.settings.KPI_ARPA_BASELINE_AT]
      );
    }
    return pool.query<BaselineRow>(DATA_START_ARPA_SQL);
  }

  async refresh(): Promise<void> {
    const { pool, metrics } = this.ctx;
    const [funnels, revenue, variance, docs, companies, overage, baseline] = await Promise.all([
      pool.query<{ funnel: string; entered: string; converted: string }>(`SELECT * FROM controlroom.funnel_30d`),
      pool.query<RevenueRow>(REVENUE_SQL),
      pool.query<{ variance_ratio: number | null }>(`SELECT variance_ratio FROM controlroom.quote_variance_30d`),
      pool.query<{ kind: string; status: string; n: string }>(
        `SELECT kind,
                CASE WHEN expires_at <= now() THEN 'expired'
                     WHEN expires_at <= now() + interval '7 days' THEN 'expiring_soon'
                     ELSE 'valid' END AS status,
                count(*) AS n
           FROM directory_docs GROUP BY 1, 2`
      ),
      pool.query<{ plan_id: string; n: string }>(
        `SELECT p.id AS plan_id, count(c.id) AS n
           FROM plans p
           LEFT JOIN org_entitlements e ON e.plan_id = p.id
           LEFT JOIN companies c ON c.id = e.company_id AND c.deleted_at IS NULL
          GROUP BY p.id`
      ),
      pool.query<{ feature: string; units: string }>(OVERAGE_SQL),
      this.baselineQuery(),
    ]);

    const byFunnel = new Map(funnels.rows.map((r) => [r.funnel, r]));
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

    const r = revenue.rows[0]!;
    const mrr = Number(r.mrr_now);
    const paying = Number(r.paying_now);
    const mrrBefore = Number(r.mrr_before);
    const payingBefore = Number(r.paying_before);
    metrics.mrr.replace([{ labels: {}, value: mrr }]);
    metrics.payingAccounts.replace([{ labels: {}, value: paying }]);
    const arpa = paying > 0 ? mrr / paying : undefined;
    metrics.arpa.replace(one(arpa));
    // A ratio over nothing is absent (no data), never 0 or NaN: a month that starts without revenue has no growth rate.
    metrics.mrrGrowth.replace(one(mrrBefore > 0 ? mrr / mrrBefore - 1 : undefined));
    metrics.netRevenueRetention.replace(one(mrrBefore > 0 ? Number(r.retained_mrr) / mrrBefore : undefined));
    metrics.logoChurn.replace(one(payingBefore > 0 ? Number(r.churned_accounts) / payingBefore : undefined));

    const base = baseline.rows[0];
    const baselineArpa =
      this.settings.KPI_ARPA_BASELINE_DOLLARS ??
      (base && Number(base.accounts) > 0 ? Number(base.mrr) / Number(base.accounts) : undefined);
    metrics.arpaBaseline.replace(one(baselineArpa));
    metrics.arpaUplift.replace(one(arpa !== undefined && baselineArpa ? arpa / baselineArpa - 1 : undefined));

    // Billed overage in dollars is known only when every feature billed in the window has a unit price.
    const prices = this.settings.KPI_OVERAGE_UNIT_PRICES;
    const priced = overage.rows.every((row) => prices[row.feature] !== undefined);
    const overageDollars = overage.rows.reduce((sum, row) => sum + Number(row.units) * (prices[row.feature] ?? 0), 0);
    metrics.overageRevenueShare.replace(one(priced && mrr > 0 ? overageDollars / mrr : undefined));

    const ratio = variance.rows[0]?.variance_ratio;
    metrics.quoteVariance.replace(ratio == null ? [] : [{ labels: {}, value: Number(ratio) }]);

    const docCounts = new Map(docs.rows.map((r) => [`${r.kind}\u0000${r.status}`, Number(r.n)]));
    const kinds = [...new Set(docs.rows.map((r) => r.kind))].sort();
    metrics.directoryDocs.replace(
      kinds.flatMap((kind) =>
        DOC_STATUSES.map((status) => ({
          labels: { kind, status },
          value: docCounts.get(`${kind}\u0000${status}`) ?? 0,
        }))
      )
    );

    metrics.companies.replace(companies.rows.map((r) => ({ labels: { plan: r.plan_id }, value: Number(r.n) })));
  }
}
