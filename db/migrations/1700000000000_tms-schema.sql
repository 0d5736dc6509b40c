-- The TMS's own tables. Control Room only reads them (and writes agent_tasks / audit_log / usage_events
-- where an issue says so); columns beyond the TMS contract are nullable or defaulted so the TMS can keep
-- inserting only the columns it knows.

-- Up Migration

CREATE TABLE companies (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  deleted_at  timestamptz
);

CREATE TABLE plans (
  id             text PRIMARY KEY,
  name           text NOT NULL,
  tier           integer NOT NULL,
  is_active      boolean NOT NULL DEFAULT true,
  price_monthly  numeric(12,2) NOT NULL,
  price_yearly   numeric(12,2) NOT NULL
);

CREATE TABLE features (
  key          text PRIMARY KEY,
  description  text NOT NULL DEFAULT '',
  category     text NOT NULL DEFAULT 'core'
);

-- hard_limit / soft_limit: -1 = unlimited, 0 = not included in the plan.
CREATE TABLE plan_features (
  plan_id      text NOT NULL REFERENCES plans(id),
  feature_key  text NOT NULL REFERENCES features(key),
  hard_limit   bigint,
  soft_limit   bigint,
  period       text NOT NULL DEFAULT 'month' CHECK (period IN ('day', 'month')),
  PRIMARY KEY (plan_id, feature_key),
  CHECK (hard_limit IS NULL OR hard_limit >= -1),
  CHECK (soft_limit IS NULL OR soft_limit >= -1)
);

CREATE TABLE org_entitlements (
  company_id              uuid PRIMARY KEY REFERENCES companies(id),
  plan_id                 text NOT NULL REFERENCES plans(id),
  started_at              timestamptz NOT NULL DEFAULT now(),
  trial_ends_at           timestamptz,
  stripe_customer_id      text,
  stripe_subscription_id  text
);
CREATE INDEX org_entitlements_plan_idx ON org_entitlements (plan_id);
CREATE INDEX org_entitlements_trial_end_idx ON org_entitlements (trial_ends_at) WHERE trial_ends_at IS NOT NULL;

-- id is ours (defaulted): it gives the exporter an append-only cursor.
CREATE TABLE usage_events (
  id           bigserial PRIMARY KEY,
  company_id   uuid NOT NULL,
  feature_key  text NOT NULL,
  qty          bigint NOT NULL DEFAULT 1 CHECK (qty >= 0),
  occurred_at  timestamptz NOT NULL DEFAULT now(),
  metadata     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX usage_events_company_feature_time_idx ON usage_events (company_id, feature_key, occurred_at);

CREATE TABLE api_requests (
  id           bigserial PRIMARY KEY,
  created_at   timestamptz NOT NULL DEFAULT now(),
  status_code  integer NOT NULL CHECK (status_code BETWEEN 100 AND 599),
  region       text NOT NULL,
  route        text NOT NULL
);
CREATE INDEX api_requests_created_at_idx ON api_requests (created_at);

CREATE TABLE quote_requests (
  id                bigserial PRIMARY KEY,
  created_at        timestamptz NOT NULL DEFAULT now(),
  response_time_ms  double precision NOT NULL CHECK (response_time_ms >= 0),
  cached            boolean NOT NULL DEFAULT false,
  company_id        uuid
);
CREATE INDEX quote_requests_created_at_idx ON quote_requests (created_at);

CREATE TABLE agent_tasks (
  id          bigserial PRIMARY KEY,
  company_id  uuid,
  fn_name     text NOT NULL,
  payload     jsonb NOT NULL DEFAULT '{}'::jsonb,
  status      text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'success', 'failed')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
-- The exporter's two access paths: open work by function, and completions by time.
CREATE INDEX agent_tasks_open_idx ON agent_tasks (fn_name, created_at) WHERE status IN ('queued', 'running');
CREATE INDEX agent_tasks_completed_idx ON agent_tasks (updated_at) WHERE status IN ('success', 'failed');

-- A status change that does not set updated_at itself still moves it, so completions are never invisible
-- to the exporter's time cursor.
CREATE FUNCTION agent_tasks_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
    NEW.updated_at := clock_timestamp();
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER agent_tasks_touch_updated_at BEFORE UPDATE ON agent_tasks
  FOR EACH ROW EXECUTE FUNCTION agent_tasks_touch_updated_at();

CREATE TABLE quotes (
  id             bigserial PRIMARY KEY,
  company_id     uuid NOT NULL,
  status         text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'sent', 'accepted', 'rejected', 'expired')),
  proposed_rate  numeric(12,2) NOT NULL CHECK (proposed_rate >= 0),
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quotes_created_at_idx ON quotes (created_at);

CREATE TABLE invoices (
  id          bigserial PRIMARY KEY,
  quote_id    bigint NOT NULL REFERENCES quotes(id),
  amount      numeric(12,2) NOT NULL CHECK (amount >= 0),
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoices_created_at_idx ON invoices (created_at);
CREATE INDEX invoices_quote_idx ON invoices (quote_id);

CREATE VIEW invoice_pricing_view AS
  SELECT i.amount AS actual, q.proposed_rate, i.created_at
  FROM invoices i JOIN quotes q ON q.id = i.quote_id;

CREATE TABLE directory_companies (
  id            bigserial PRIMARY KEY,
  company_id    uuid NOT NULL,
  company_name  text NOT NULL,
  status        text NOT NULL DEFAULT 'invited' CHECK (status IN ('invited', 'onboarded')),
  invited_at    timestamptz NOT NULL DEFAULT now(),
  onboarded_at  timestamptz
);
CREATE INDEX directory_companies_invited_at_idx ON directory_companies (invited_at);

CREATE TABLE directory_docs (
  id                    bigserial PRIMARY KEY,
  directory_company_id  bigint NOT NULL REFERENCES directory_companies(id),
  kind                  text NOT NULL,
  expires_at            timestamptz
);
CREATE INDEX directory_docs_kind_expiry_idx ON directory_docs (kind, expires_at);

CREATE TABLE audit_log (
  id          bigserial PRIMARY KEY,
  actor       text NOT NULL,
  company_id  uuid,
  action      text NOT NULL,
  target      text,
  payload     jsonb NOT NULL DEFAULT '{}'::jsonb,
  ip_address  inet,
  user_agent  text,
  ts          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_ts_idx ON audit_log (ts);

-- Down Migration

DROP TABLE audit_log, directory_docs, directory_companies;
DROP VIEW invoice_pricing_view;
DROP TABLE invoices, quotes, agent_tasks, quote_requests, api_requests, usage_events,
  org_entitlements, plan_features, features, plans, companies;
DROP FUNCTION agent_tasks_touch_updated_at();
