-- Control Room's own state lives in its own schema so it never collides with the TMS's tables.
-- The exporter keeps its counters here: they survive restarts and the TMS purging old rows.

-- Up Migration

CREATE SCHEMA IF NOT EXISTS controlroom;

-- One row per incremental collector: its cursor, open id gaps and counter rollups, updated in the same
-- transaction that reads the new rows, so a crash can neither lose nor double a row.
CREATE TABLE controlroom.exporter_state (
  collector   text PRIMARY KEY,
  state       jsonb NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Usage per tenant, feature and UTC day, folded in from usage_events as they arrive.
CREATE TABLE controlroom.usage_daily (
  company_id   uuid NOT NULL,
  feature_key  text NOT NULL,
  day          date NOT NULL,
  qty          bigint NOT NULL,
  PRIMARY KEY (company_id, feature_key, day)
);
CREATE INDEX usage_daily_day_idx ON controlroom.usage_daily (day);

-- Conversion funnels over 30-day cohorts. These views are the definition the dashboards document.
--   quote_to_book:     quotes sent to a shipper in the last 30 days -> accepted
--   trial_to_paid:     trials that ended in the last 30 days        -> have a Stripe subscription
--   invite_to_onboard: carriers invited in the last 30 days         -> onboarded
CREATE VIEW controlroom.funnel_30d AS
  SELECT 'quote_to_book'::text AS funnel,
         count(*)::bigint AS entered,
         count(*) FILTER (WHERE status = 'accepted')::bigint AS converted
    FROM quotes
   WHERE created_at > now() - interval '30 days' AND status <> 'draft'
  UNION ALL
  SELECT 'trial_to_paid',
         count(*),
         count(*) FILTER (WHERE e.stripe_subscription_id IS NOT NULL)
    FROM org_entitlements e JOIN companies c ON c.id = e.company_id
   WHERE e.trial_ends_at > now() - interval '30 days' AND e.trial_ends_at <= now()
  UNION ALL
  SELECT 'invite_to_onboard',
         count(*),
         count(*) FILTER (WHERE onboarded_at IS NOT NULL)
    FROM directory_companies
   WHERE invited_at > now() - interval '30 days';

-- Paying accounts: a live company with a Stripe subscription and no trial still running.
CREATE VIEW controlroom.revenue_now AS
  SELECT coalesce(sum(p.price_monthly), 0)::double precision AS mrr_dollars,
         count(*)::bigint AS paying_accounts
    FROM org_entitlements e
    JOIN companies c ON c.id = e.company_id AND c.deleted_at IS NULL
    JOIN plans p ON p.id = e.plan_id
   WHERE e.stripe_subscription_id IS NOT NULL
     AND (e.trial_ends_at IS NULL OR e.trial_ends_at <= now());

-- Mean absolute deviation of invoiced amount from the quoted rate, relative to the quote, 30 days.
CREATE VIEW controlroom.quote_variance_30d AS
  SELECT avg(abs(actual - proposed_rate) / proposed_rate)::double precision AS variance_ratio,
         count(*)::bigint AS invoices
    FROM invoice_pricing_view
   WHERE created_at > now() - interval '30 days' AND proposed_rate > 0;

-- Down Migration

DROP VIEW controlroom.quote_variance_30d, controlroom.revenue_now, controlroom.funnel_30d;
DROP TABLE controlroom.usage_daily, controlroom.exporter_state;
DROP SCHEMA controlroom;
