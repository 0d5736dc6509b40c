-- The rating engine's pricing models (control/rating/registry.ts). `params` is the validated model
-- (control/rating/model.ts); the row's version is the primary key and equals params->>'version'.
-- Exactly one model is active; at most one candidate takes `candidate_share` of lanes in an A/B split.
-- `retired_at` orders retired models for rollback (the most recently retired one is re-activated).

-- Up Migration

CREATE TABLE controlroom.pricing_models (
  version          text PRIMARY KEY CHECK (version ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
  params           jsonb NOT NULL CHECK (params->>'version' = version),
  status           text NOT NULL DEFAULT 'draft' CHECK (status IN ('active', 'candidate', 'retired', 'draft')),
  candidate_share  numeric NOT NULL DEFAULT 0.10 CHECK (candidate_share > 0 AND candidate_share <= 0.5),
  created_by       text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  activated_at     timestamptz,
  retired_at       timestamptz,
  CHECK (status <> 'active' OR activated_at IS NOT NULL),
  CHECK (status <> 'retired' OR retired_at IS NOT NULL)
);
CREATE UNIQUE INDEX pricing_models_one_active ON controlroom.pricing_models ((true)) WHERE status = 'active';
CREATE UNIQUE INDEX pricing_models_one_candidate ON controlroom.pricing_models ((true)) WHERE status = 'candidate';
CREATE INDEX pricing_models_retired_idx ON controlroom.pricing_models (retired_at DESC) WHERE status = 'retired';

-- v1: 2026 US truckload. All-in per mile before seasonality (linehaul + $0.46 fuel): van $2.41,
-- reefer $2.78, flatbed $2.98; carrier cost van $2.08, reefer $2.42, flatbed $2.60; $350 minimum;
-- produce-season (May-June) and Q4 peaks; 8% least markup over carrier cost; road miles = 1.2 x great circle.
INSERT INTO controlroom.pricing_models (version, params, status, created_by, activated_at) VALUES (
  'v1',
  '{
    "version": "v1",
    "ratePerMile": {"van": 1.95, "reefer": 2.32, "flatbed": 2.52},
    "costPerMile": {"van": 2.08, "reefer": 2.42, "flatbed": 2.6},
    "fuelSurcharge": {"kind": "per_mile", "perMile": 0.46},
    "minimumCharge": 350,
    "seasonality": [0.96, 0.95, 0.98, 1.01, 1.05, 1.07, 1.03, 1.0, 0.99, 1.01, 1.04, 1.07],
    "regionalCaps": {"Northeast": 4.25, "Southeast": 3.75, "Midwest": 3.75, "South Central": 3.5,
                     "Mountain": 3.75, "West Coast": 4.25, "Pacific Northwest": 4.0},
    "minMargin": 0.08,
    "circuityFactor": 1.2
  }'::jsonb,
  'active',
  'controlroom:migration',
  now()
);

-- Down Migration

DROP TABLE controlroom.pricing_models;
