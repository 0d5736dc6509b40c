-- The product plan's table of plans and limits (Phase 4), metered as Phase 6 names the meters: quotes
-- per month (rates), bulk rating JOBS per day (bulk_rating; lanes per job are bounded by BULK_MAX_LANES,
-- not by the plan), directory invites per month (directory). api_access keeps its daily period.
-- soft_limit is what the plan includes (overage is billed above it, warnings are measured against it);
-- hard_limit is where the product blocks; -1 = unlimited. A feature a plan does not list is not included
-- in it: the rows with limit 0 that 1700000000001 wrote for such features are removed.
--
-- usage_events written for bulk_rating before this migration carry lanes, not jobs. The period is a UTC
-- day, so they only weigh on the day the migration runs; they are left as the TMS wrote them.

-- Up Migration

UPDATE plans SET price_monthly = 99.00,  price_yearly = 990.00  WHERE id = 'starter';
UPDATE plans SET price_monthly = 299.00, price_yearly = 2990.00 WHERE id = 'pro';
UPDATE plans SET price_monthly = 999.00, price_yearly = 9990.00 WHERE id = 'enterprise';

UPDATE features SET description = 'Rate quotes (quotes per month)' WHERE key = 'rates';
UPDATE features SET description = 'Carrier directory invitations (invites per month)' WHERE key = 'directory';
UPDATE features SET description = 'Bulk rating (jobs per day)' WHERE key = 'bulk_rating';

DELETE FROM plan_features WHERE plan_id IN ('starter', 'pro', 'enterprise');
INSERT INTO plan_features (plan_id, feature_key, hard_limit, soft_limit, period) VALUES
  ('starter',    'rates',               100,     50,  'month'),
  ('starter',    'directory',            50,     25,  'month'),
  ('pro',        'rates',              1000,    500,  'month'),
  ('pro',        'directory',           500,    250,  'month'),
  ('pro',        'bulk_rating',          10,      5,  'day'),
  ('pro',        'api_access',        10000,   5000,  'day'),
  ('enterprise', 'rates',                -1,     -1,  'month'),
  ('enterprise', 'directory',            -1,     -1,  'month'),
  ('enterprise', 'bulk_rating',          -1,     -1,  'day'),
  ('enterprise', 'api_access',           -1,     -1,  'day'),
  ('enterprise', 'white_label',           1,      1,  'month'),
  ('enterprise', 'dedicated_support',     1,      1,  'month');

-- Down Migration

UPDATE features SET description = 'Instant rate quotes' WHERE key = 'rates';
UPDATE features SET description = 'Carrier directory invitations' WHERE key = 'directory';
UPDATE features SET description = 'Bulk lane rating (lanes per period)' WHERE key = 'bulk_rating';

DELETE FROM plan_features WHERE plan_id IN ('starter', 'pro', 'enterprise');
INSERT INTO plan_features (plan_id, feature_key, hard_limit, soft_limit, period) VALUES
  ('starter',    'rates',              1000,     800,  'month'),
  ('starter',    'directory',            50,      40,  'month'),
  ('starter',    'bulk_rating',           0,       0,  'month'),
  ('starter',    'api_access',            0,       0,  'day'),
  ('starter',    'white_label',           0,       0,  'month'),
  ('starter',    'dedicated_support',     0,       0,  'month'),
  ('pro',        'rates',             15000,   10000,  'month'),
  ('pro',        'directory',           500,     400,  'month'),
  ('pro',        'bulk_rating',       50000,   40000,  'month'),
  ('pro',        'api_access',        10000,    8000,  'day'),
  ('pro',        'white_label',           0,       0,  'month'),
  ('pro',        'dedicated_support',     0,       0,  'month'),
  ('enterprise', 'rates',                -1,      -1,  'month'),
  ('enterprise', 'directory',            -1,      -1,  'month'),
  ('enterprise', 'bulk_rating',     1000000,  800000,  'month'),
  ('enterprise', 'api_access',       250000,  200000,  'day'),
  ('enterprise', 'white_label',          -1,      -1,  'month'),
  ('enterprise', 'dedicated_support',    -1,      -1,  'month');
