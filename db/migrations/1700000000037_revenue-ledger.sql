-- Revenue ledger (issue 20): the exporter's business collector keeps every account's revenue state in
-- memory and re-reads only the accounts that changed, instead of recomputing paying_accounts_at() over
-- every account (now and 30 days ago) each minute. This ledger is how it learns which changed: one row
-- per change of anything paying_accounts_at() or the tenants-by-plan count reads, written by triggers in
-- the same transaction as the change, whoever makes it (the TMS, Stripe webhooks, the billing job, a
-- replay). A row names the account; a row with company_id NULL means "re-read every account" (a plan's
-- price changed, a table was truncated). The collector follows the ledger by its id cursor
-- (exporter/id-cursor.ts, gaps included), so a change committed late is still seen.
--
-- What the ledger does not carry is time passing (grace ends, a trial ends, the 30-day-ago instant
-- moves): the collector derives those transitions from the states it holds (each account's next
-- boundary after now and after now - 30 days).

-- Up Migration

CREATE TABLE controlroom.revenue_changes (
  id          bigserial PRIMARY KEY,
  company_id  uuid,
  -- When the change was written (the clock, not the transaction start): a restarting collector re-reads
  -- the changes of its gap grace period before its snapshot, which covers those still uncommitted then.
  at          timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Every state of one account, for re-reading the accounts that changed (the history had no index by
-- account, only the current state's).
CREATE INDEX entitlement_history_company_idx ON controlroom.entitlement_history (company_id);

-- Row triggers: TG_ARGV[0] is the column naming the account (id in companies, company_id elsewhere).
-- Both the old and the new account are noted when a row moves between accounts.
CREATE FUNCTION controlroom.note_revenue_change() RETURNS trigger LANGUAGE plpgsql
  -- The TMS roles that write these tables need no right on the controlroom schema.
  SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  old_id uuid := CASE WHEN TG_OP <> 'INSERT' THEN (to_jsonb(OLD) ->> TG_ARGV[0])::uuid END;
  new_id uuid := CASE WHEN TG_OP <> 'DELETE' THEN (to_jsonb(NEW) ->> TG_ARGV[0])::uuid END;
BEGIN
  IF old_id IS NOT NULL THEN
    INSERT INTO controlroom.revenue_changes (company_id) VALUES (old_id);
  END IF;
  IF new_id IS NOT NULL AND new_id IS DISTINCT FROM old_id THEN
    INSERT INTO controlroom.revenue_changes (company_id) VALUES (new_id);
  END IF;
  RETURN NULL;
END $$;

-- Statement triggers (TRUNCATE, any change to plans): every account is re-read.
CREATE FUNCTION controlroom.note_revenue_change_all() RETURNS trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  INSERT INTO controlroom.revenue_changes (company_id) VALUES (NULL);
  RETURN NULL;
END $$;

CREATE TRIGGER entitlement_history_revenue_change AFTER INSERT OR UPDATE OR DELETE ON controlroom.entitlement_history
  FOR EACH ROW EXECUTE FUNCTION controlroom.note_revenue_change('company_id');
CREATE TRIGGER entitlement_history_revenue_change_all AFTER TRUNCATE ON controlroom.entitlement_history
  FOR EACH STATEMENT EXECUTE FUNCTION controlroom.note_revenue_change_all();

-- A company counts while it exists and until its deleted_at; nothing else of the row matters.
CREATE TRIGGER companies_revenue_change AFTER INSERT OR DELETE ON companies
  FOR EACH ROW EXECUTE FUNCTION controlroom.note_revenue_change('id');
CREATE TRIGGER companies_revenue_change_update AFTER UPDATE OF id, deleted_at ON companies
  FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
  EXECUTE FUNCTION controlroom.note_revenue_change('id');
CREATE TRIGGER companies_revenue_change_all AFTER TRUNCATE ON companies
  FOR EACH STATEMENT EXECUTE FUNCTION controlroom.note_revenue_change_all();

-- Tenants by plan count the current entitlements directly (not their history, which a bulk load can
-- write without the history trigger).
CREATE TRIGGER org_entitlements_revenue_change AFTER INSERT OR DELETE ON org_entitlements
  FOR EACH ROW EXECUTE FUNCTION controlroom.note_revenue_change('company_id');
CREATE TRIGGER org_entitlements_revenue_change_update AFTER UPDATE OF company_id, plan_id ON org_entitlements
  FOR EACH ROW WHEN (OLD.company_id IS DISTINCT FROM NEW.company_id OR OLD.plan_id IS DISTINCT FROM NEW.plan_id)
  EXECUTE FUNCTION controlroom.note_revenue_change('company_id');
CREATE TRIGGER org_entitlements_revenue_change_all AFTER TRUNCATE ON org_entitlements
  FOR EACH STATEMENT EXECUTE FUNCTION controlroom.note_revenue_change_all();

CREATE TRIGGER plans_revenue_change_all AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON plans
  FOR EACH STATEMENT EXECUTE FUNCTION controlroom.note_revenue_change_all();

-- Down Migration

DROP TRIGGER plans_revenue_change_all ON plans;
DROP TRIGGER org_entitlements_revenue_change_all ON org_entitlements;
DROP TRIGGER org_entitlements_revenue_change_update ON org_entitlements;
DROP TRIGGER org_entitlements_revenue_change ON org_entitlements;
DROP TRIGGER companies_revenue_change_all ON companies;
DROP TRIGGER companies_revenue_change_update ON companies;
DROP TRIGGER companies_revenue_change ON companies;
DROP TRIGGER entitlement_history_revenue_change_all ON controlroom.entitlement_history;
DROP TRIGGER entitlement_history_revenue_change ON controlroom.entitlement_history;
DROP FUNCTION controlroom.note_revenue_change_all();
DROP FUNCTION controlroom.note_revenue_change();
DROP INDEX controlroom.entitlement_history_company_idx;
DROP TABLE controlroom.revenue_changes;
