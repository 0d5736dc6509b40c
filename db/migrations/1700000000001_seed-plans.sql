-- Plans, features and limits from the product plan. soft_limit is what the plan includes (overage is
-- billed above it); hard_limit is where the product blocks. -1 = unlimited, 0 = not in the plan.

-- Up Migration

INSERT INTO plans (id, name, tier, is_active, price_monthly, price_yearly) VALUES
  ('starter',    'Starter',    1, true,  99.00,  990.00),
  ('pro',        'Pro',        2, true, 299.00, 2990.00),
  ('enterprise', 'Enterprise', 3, true, 999.00, 9990.00);

INSERT INTO features (key, description, category) VALUES
  ('rates',             'Instant rate quotes',                 'core'),
  ('directory',         'Carrier directory invitations',       'core'),
  ('bulk_rating',       'Bulk lane rating (lanes per period)', 'automation'),
  ('api_access',        'Public API calls',                    'platform'),
  ('white_label',       'White-label customer portal',         'platform'),
  ('dedicated_support', 'Dedicated support engineer',          'support');

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

-- Down Migration

DELETE FROM plan_features WHERE plan_id IN ('starter', 'pro', 'enterprise');
DELETE FROM features WHERE key IN ('rates', 'directory', 'bulk_rating', 'api_access', 'white_label', 'dedicated_support');
DELETE FROM plans WHERE id IN ('starter', 'pro', 'enterprise');
