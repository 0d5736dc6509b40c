-- Billing with Stripe: subscription state on the entitlements, webhook idempotency, and the outbox of
-- Stripe Billing Meter events for usage above the included (soft) limit.

-- Up Migration

-- billing_status: active | trialing | grace (payment failed, still served until grace_until) |
-- past_due (grace over, or Stripe says unpaid) | canceled (subscription ended: plan revoked).
-- Two clocks keep out-of-order webhooks harmless: last_stripe_event_at orders every status change
-- (subscription and invoice events); last_subscription_event_at orders the plan/period/trial fields,
-- which only subscription events carry.
ALTER TABLE org_entitlements
  ADD COLUMN billing_status             text NOT NULL DEFAULT 'active'
    CHECK (billing_status IN ('active', 'trialing', 'past_due', 'grace', 'canceled')),
  ADD COLUMN grace_until                timestamptz,
  ADD COLUMN current_period_end         timestamptz,
  ADD COLUMN last_stripe_event_at       timestamptz,
  ADD COLUMN last_subscription_event_at timestamptz;
CREATE INDEX org_entitlements_stripe_customer_idx ON org_entitlements (stripe_customer_id) WHERE stripe_customer_id IS NOT NULL;
CREATE INDEX org_entitlements_stripe_subscription_idx ON org_entitlements (stripe_subscription_id) WHERE stripe_subscription_id IS NOT NULL;
CREATE INDEX org_entitlements_grace_idx ON org_entitlements (grace_until) WHERE billing_status = 'grace';

-- What a canceled subscription falls back to: a plan that includes nothing (every limit 0), so the
-- existing hard-limit checks (bulk rating's 402) refuse without knowing about billing.
INSERT INTO plans (id, name, tier, is_active, price_monthly, price_yearly)
VALUES ('revoked', 'No active subscription', 0, false, 0, 0)
ON CONFLICT (id) DO NOTHING;
INSERT INTO plan_features (plan_id, feature_key, hard_limit, soft_limit, period)
SELECT 'revoked', f.key, 0, 0, 'month' FROM features f
ON CONFLICT DO NOTHING;

-- One row per Stripe event id: a redelivery finds its row and changes nothing.
CREATE TABLE controlroom.stripe_events (
  id            text PRIMARY KEY,
  type          text NOT NULL,
  created       timestamptz NOT NULL,
  company_id    uuid,
  processed_at  timestamptz NOT NULL DEFAULT now(),
  outcome       text NOT NULL
);
CREATE INDEX stripe_events_company_idx ON controlroom.stripe_events (company_id, created);

-- The outbox of meter events. identifier is what Stripe dedupes on; units_from/units_to are the
-- cumulative overage units of the period this row covers, so rows of one period are contiguous and a
-- unit is never in two rows. sent_at is set only once Stripe accepted the event.
CREATE TABLE controlroom.billing_meter_events (
  identifier          text PRIMARY KEY,
  company_id          uuid NOT NULL,
  feature             text NOT NULL,
  event_name          text NOT NULL,
  stripe_customer_id  text NOT NULL,
  qty                 bigint NOT NULL CHECK (qty > 0),
  units_from          bigint NOT NULL CHECK (units_from >= 0),
  period_start        date NOT NULL,
  event_timestamp     timestamptz NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now(),
  sent_at             timestamptz,
  attempts            integer NOT NULL DEFAULT 0,
  next_attempt_at     timestamptz NOT NULL DEFAULT now(),
  last_error          text,
  UNIQUE (company_id, feature, period_start, units_from)
);
CREATE INDEX billing_meter_events_unsent_idx ON controlroom.billing_meter_events (next_attempt_at) WHERE sent_at IS NULL;

-- Down Migration

DROP TABLE controlroom.billing_meter_events, controlroom.stripe_events;
UPDATE org_entitlements SET plan_id = 'starter' WHERE plan_id = 'revoked';
DELETE FROM plan_features WHERE plan_id = 'revoked';
DELETE FROM plans WHERE id = 'revoked';
DROP INDEX org_entitlements_grace_idx, org_entitlements_stripe_subscription_idx, org_entitlements_stripe_customer_idx;
ALTER TABLE org_entitlements
  DROP COLUMN billing_status, DROP COLUMN grace_until, DROP COLUMN current_period_end,
  DROP COLUMN last_stripe_event_at, DROP COLUMN last_subscription_event_at;
