import type { Collector } from '../runner.ts';
import type { CollectorContext } from './context.ts';

export const FUNNELS = ['quote_to_book', 'trial_to_paid', 'invite_to_onboard'] as const;
export const DOC_STATUSES = ['valid', 'expiring_soon', 'expired'] as const;

/**
 * Slow-moving business gauges: conversion funnels, revenue, pricing accuracy, carrier documents and
 * tenants by plan. Each query is bounded by an index (30-day windows, small reference tables), and runs
 * once per EXPORTER_SLOW_REFRESH_MS in the background.
 */
export class BusinessCollector implements Collector {
  readonly name = 'business';
  readonly intervalMs: number;

  constructor(private readonly ctx: CollectorContext) {
    this.intervalMs = ctx.settings.EXPORTER_SLOW_REFRESH_MS;
  }

  async refresh(): Promise<void> {
    const { pool, metrics } = this.ctx;
    const [funnels, revenue, variance, docs, companies] = await Promise.all([
      pool.query<{ funnel: string; entered: string; converted: string }>(`SELECT * FROM controlroom.funnel_30d`),
      pool.query<{ mrr_dollars: number; paying_accounts: string }>(`SELECT * FROM controlroom.revenue_now`),
      pool.query<{ variance_ratio: number | null }>(`SELECT variance_ratio FROM controlroom.quote_variance_30d`),
      pool.query<{ kind: string; status: string; n: string }>(
        `SELECT kind,
                CASE WHEN expires_at <= now() THEN 'expired'
                     WHEN expires_at <= now() + interval '7 days' THEN 'expiring_soon'
                     ELSE 'valid' END AS status,
                count(*) AS n
           FROM directory_docs GROUP BY 1, 2`,
      ),
      pool.query<{ plan_id: string; n: string }>(
        `SELECT p.id AS plan_id, count(c.id) AS n
           FROM plans p
           LEFT JOIN org_entitlements e ON e.plan_id = p.id
           LEFT JOIN companies c ON c.id = e.company_id AND c.deleted_at IS NULL
          GROUP BY p.id`,
      ),
    ]);

    const byFunnel = new Map(funnels.rows.map((r) => [r.funnel, r]));
    const entered = FUNNELS.map((funnel) => ({ funnel, value: Number(byFunnel.get(funnel)?.entered ?? 0) }));
    const converted = FUNNELS.map((funnel) => ({ funnel, value: Number(byFunnel.get(funnel)?.converted ?? 0) }));
    metrics.funnelEntered.replace(entered.map(({ funnel, value }) => ({ labels: { funnel }, value })));
    metrics.funnelConverted.replace(converted.map(({ funnel, value }) => ({ labels: { funnel }, value })));
    // No cohort, no ratio: an absent series reads "no data" rather than a misleading 0%.
    metrics.conversionRatio.replace(
      FUNNELS.flatMap((funnel, i) =>
        entered[i]!.value > 0 ? [{ labels: { funnel }, value: converted[i]!.value / entered[i]!.value }] : [],
      ),
    );

    const mrr = Number(revenue.rows[0]?.mrr_dollars ?? 0);
    const paying = Number(revenue.rows[0]?.paying_accounts ?? 0);
    metrics.mrr.replace([{ labels: {}, value: mrr }]);
    metrics.payingAccounts.replace([{ labels: {}, value: paying }]);
    metrics.arpa.replace(paying > 0 ? [{ labels: {}, value: mrr / paying }] : []);

    const ratio = variance.rows[0]?.variance_ratio;
    metrics.quoteVariance.replace(ratio == null ? [] : [{ labels: {}, value: Number(ratio) }]);

    const docCounts = new Map(docs.rows.map((r) => [`${r.kind}\u0000${r.status}`, Number(r.n)]));
    const kinds = [...new Set(docs.rows.map((r) => r.kind))].sort();
    metrics.directoryDocs.replace(
      kinds.flatMap((kind) =>
        DOC_STATUSES.map((status) => ({ labels: { kind, status }, value: docCounts.get(`${kind}\u0000${status}`) ?? 0 })),
      ),
    );

    metrics.companies.replace(companies.rows.map((r) => ({ labels: { plan: r.plan_id }, value: Number(r.n) })));
  }
}
