-- The usage collector adds each refresh's new usage to today's rows of controlroom.usage_daily (one
-- upsert per tenant and feature that used something). Only qty changes, which no index covers, so the
-- update can be HOT (no new index entries) when the row's page has room for the new version. Leaving
-- half of each page free gives it that room; the versions a HOT update leaves behind are pruned from the
-- page by later reads. Pages written from now on (every new day's rows) get the room; existing pages,
-- which hold past days no refresh updates, are not rewritten.

-- Up Migration

ALTER TABLE controlroom.usage_daily SET (fillfactor = 50);

-- Down Migration

ALTER TABLE controlroom.usage_daily RESET (fillfactor);
