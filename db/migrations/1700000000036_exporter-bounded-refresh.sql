-- Two changes that keep the exporter's refreshes bounded by what changed, not by table size.
--
-- 1. The usage collector adds each refresh's new usage to today's rows of controlroom.usage_daily (one
--    upsert per tenant and feature that used something). Only qty changes, which no index covers, so the
--    update can be HOT (no new index entries) when the row's page has room for the new version. Leaving
--    half of each page free gives it that room; the versions a HOT update leaves behind are pruned from
--    the page by later reads. Pages written from now on (every new day's rows) get the room; existing
--    pages, which hold past days no refresh updates, are not rewritten.
--
-- 2. The default ARPA baseline looks for the first instant any account paid (exporter/collectors/
--    business.ts, DATA_START_ARPA_SQL). This index holds the states that can pay in the order of their
--    paying start (the later of the state's start and its trial's end), so that query reads them from the
--    earliest until one really paid, usually the first, instead of scanning the whole history every minute.

-- Up Migration

ALTER TABLE controlroom.usage_daily SET (fillfactor = 50);

CREATE INDEX entitlement_history_paying_start_idx
  ON controlroom.entitlement_history ((greatest(valid_from, trial_ends_at)))
  WHERE subscribed AND billing_status IN ('active', 'grace', 'past_due');

-- Down Migration

DROP INDEX controlroom.entitlement_history_paying_start_idx;
ALTER TABLE controlroom.usage_daily RESET (fillfactor);
