-- Executive scorecard (issue 17): month-over-month revenue KPIs need each account's subscription state at
-- a past instant, which org_entitlements (current state only) cannot give. A trigger on org_entitlements
-- records every change of the fields that decide MRR as a validity interval, so the history is complete
-- whoever changes the row (the TMS, Control Room's Stripe webhooks, the billing job) and is written in
-- the same transaction as the change: it can neither miss nor invent a change.

-- Up Migration

-- One row per state of an account's entitlement, valid over [valid_from, valid_to); valid_to NULL = the
-- current state. Only the fields that decide whether and how much an account pays are kept.
CREATE TABLE controlroom.entitlement_history (
  id              bigserial PRIMARY KEY,
  company_id      uuid NOT NULL,
  plan_id         text NOT NULL,
  billing_status  text NOT NULL,
  grace_until     timestamptz,
  trial_ends_at   timestamptz,
  subscribed      boolean NOT NULL,
  valid_from      timestamptz NOT NULL,
  valid_to        timestamptz,
  CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
-- At most one current state per account; the state at an instant is found by the interval.
CREATE UNIQUE INDEX entitlement_history_current_idx ON controlroom.entitlement_history (company_id) WHERE valid_to IS NULL;
CREATE INDEX entitlement_history_interval_idx ON controlroom.entitlement_history (valid_from, valid_to);

-- When a change takes effect: now(), or `controlroom.effective_at` when a session sets it (an import or
-- replay of the TMS's subscription history: SET LOCAL controlroom.effective_at = '2026-11-03T00:00Z').
CREATE FUNCTION controlroom.entitlement_effective_at() RETURNS timestamptz LANGUAGE sql STABLE AS $$
  SELECT coalesce(nullif(current_setting('controlroom.effective_at', true), '')::timestamptz, now())
$$;

CREATE FUNCTION controlroom.record_entitlement_history() RETURNS trigger LANGUAGE plpgsql
  -- The TMS role that writes org_entitlements needs no right on the controlroom schema.
  SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  at timestamptz := controlroom.entitlement_effective_at();
BEGIN
  IF TG_OP = 'UPDATE'
     AND NEW.company_id = OLD.company_id
     AND NEW.plan_id IS NOT DISTINCT FROM OLD.plan_id
     AND NEW.billing_status IS NOT DISTINCT FROM OLD.billing_status
     AND NEW.grace_until IS NOT DISTINCT FROM OLD.grace_until
     AND NEW.trial_ends_at IS NOT DISTINCT FROM OLD.trial_ends_at
     AND (NEW.stripe_subscription_id IS NULL) = (OLD.stripe_subscription_id IS NULL) THEN
    RETURN NULL; -- nothing that decides revenue changed (period end, Stripe clocks, customer id)
  END IF;
  -- Close the account's current state. A change dated before that state began (a replay out of order)
  -- closes it where it began rather than making an interval that ends before it starts. On INSERT this
  -- finds nothing unless a state was left open (rows removed with triggers off): closing it keeps the
  -- TMS's insert from failing on the one-current-state index.
  UPDATE controlroom.entitlement_history
     SET valid_to = greatest(valid_from, at)
   WHERE valid_to IS NULL
     AND company_id IN (CASE WHEN TG_OP <> 'INSERT' THEN OLD.company_id END, CASE WHEN TG_OP <> 'DELETE' THEN NEW.company_id END);
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO controlroom.entitlement_history
      (company_id, plan_id, billing_status, grace_until, trial_ends_at, subscribed, valid_from)
    VALUES
      (NEW.company_id, NEW.plan_id, NEW.billing_status, NEW.grace_until, NEW.trial_ends_at,
       NEW.stripe_subscription_id IS NOT NULL,
       -- A new entitlement is valid from when its subscription started, unless a replay says otherwise;
       -- never before the end of the account's earlier states, so no instant has two states (an account
       -- re-inserted with an old started_at, or a replay out of order, would otherwise count twice).
       greatest(
         CASE WHEN TG_OP = 'INSERT' AND nullif(current_setting('controlroom.effective_at', true), '') IS NULL
              THEN NEW.started_at ELSE at END,
         (SELECT max(valid_to) FROM controlroom.entitlement_history WHERE company_id = NEW.company_id)));
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER org_entitlements_history AFTER INSERT OR UPDATE OR DELETE ON org_entitlements
  FOR EACH ROW EXECUTE FUNCTION controlroom.record_entitlement_history();

-- TRUNCATE fires no row trigger: end every current state instead.
CREATE FUNCTION controlroom.close_entitlement_history() RETURNS trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  UPDATE controlroom.entitlement_history SET valid_to = greatest(valid_from, controlroom.entitlement_effective_at())
   WHERE valid_to IS NULL;
  RETURN NULL;
END $$;
CREATE TRIGGER org_entitlements_history_truncate AFTER TRUNCATE ON org_entitlements
  FOR EACH STATEMENT EXECUTE FUNCTION controlroom.close_entitlement_history();

-- The existing entitlements, as if unchanged since their subscription started (the best the current
-- rows can say about the past).
INSERT INTO controlroom.entitlement_history
  (company_id, plan_id, billing_status, grace_until, trial_ends_at, subscribed, valid_from)
SELECT company_id, plan_id, billing_status, grace_until, trial_ends_at, stripe_subscription_id IS NOT NULL, started_at
  FROM org_entitlements;

-- The one definition of "a paying account at instant t" and its MRR, used by every revenue KPI:
--   * its company exists and is not soft-deleted at t (deleted_at NULL or after t);
--   * its entitlement at t has a Stripe subscription and no trial still running (trial_ends_at <= t);
--   * its billing status at t is active, or past due (grace: payment failed; or past_due) while t is inside
--     the grace period (grace_until > t); after it, and trialing and canceled accounts, pay nothing;
--   * its MRR is its plan's monthly list price (plans.price_monthly).
CREATE FUNCTION controlroom.paying_accounts_at(t timestamptz)
RETURNS TABLE (company_id uuid, plan_id text, mrr_dollars numeric)
LANGUAGE sql STABLE AS $$
  SELECT h.company_id, h.plan_id, p.price_monthly
    FROM controlroom.entitlement_history h
    JOIN companies c ON c.id = h.company_id
    JOIN plans p ON p.id = h.plan_id
   WHERE h.valid_from <= t AND (h.valid_to IS NULL OR h.valid_to > t)
     AND (c.deleted_at IS NULL OR c.deleted_at > t)
     AND h.subscribed
     AND (h.trial_ends_at IS NULL OR h.trial_ends_at <= t)
     AND (h.billing_status = 'active' OR (h.billing_status IN ('grace', 'past_due') AND h.grace_until > t))
$$;

-- tms_mrr_dollars / tms_paying_accounts: the paying accounts now, by the definition above (a past-due
-- account counts only inside its grace period; a canceled one no longer counts as a $0 paying account).
CREATE OR REPLACE VIEW controlroom.revenue_now AS
  SELECT coalesce(sum(mrr_dollars), 0)::double precision AS mrr_dollars,
         count(*)::bigint AS paying_accounts
    FROM controlroom.paying_accounts_at(now());

-- Overage revenue is read by when the usage was metered.
CREATE INDEX billing_meter_events_timestamp_idx ON controlroom.billing_meter_events (event_timestamp);

-- Down Migration

DROP INDEX controlroom.billing_meter_events_timestamp_idx;
CREATE OR REPLACE VIEW controlroom.revenue_now AS
  SELECT coalesce(sum(p.price_monthly), 0)::double precision AS mrr_dollars,
         count(*)::bigint AS paying_accounts
    FROM org_entitlements e
    JOIN companies c ON c.id = e.company_id AND c.deleted_at IS NULL
    JOIN plans p ON p.id = e.plan_id
   WHERE e.stripe_subscription_id IS NOT NULL
     AND (e.trial_ends_at IS NULL OR e.trial_ends_at <= now());
DROP FUNCTION controlroom.paying_accounts_at(timestamptz);
DROP TRIGGER org_entitlements_history_truncate ON org_entitlements;
DROP TRIGGER org_entitlements_history ON org_entitlements;
DROP FUNCTION controlroom.close_entitlement_history();
DROP FUNCTION controlroom.record_entitlement_history();
DROP FUNCTION controlroom.entitlement_effective_at();
DROP TABLE controlroom.entitlement_history;
