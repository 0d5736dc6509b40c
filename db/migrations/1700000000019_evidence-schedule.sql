-- Evidence on a schedule (issue 18): every weekly bundle the queue job writes, verifies and, after the
-- retention, prunes; and when the schedule was first switched on (a week before that is not "missed").

-- Up Migration

CREATE TABLE controlroom.evidence_bundles (
  id           bigserial PRIMARY KEY,
  -- The scheduled time this bundle is for (one bundle per slot: a retried or repeated job finds its row).
  slot         timestamptz NOT NULL UNIQUE,
  period_from  timestamptz NOT NULL,
  period_to    timestamptz NOT NULL,
  dir          text NOT NULL,
  status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'verified', 'failed', 'pruned')),
  attempts     integer NOT NULL DEFAULT 1 CHECK (attempts >= 1),
  files        integer,
  manifest_sha256 text,
  error        text,
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  pruned_at    timestamptz,
  CHECK (period_from < period_to),
  CHECK ((status = 'running') = (finished_at IS NULL)),
  CHECK ((status = 'pruned') = (pruned_at IS NOT NULL)),
  CHECK (status <> 'verified' OR (files IS NOT NULL AND manifest_sha256 IS NOT NULL))
);
CREATE INDEX evidence_bundles_status_slot_idx ON controlroom.evidence_bundles (status, slot DESC);

CREATE TABLE controlroom.evidence_schedule (
  id             integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
  schedule       text NOT NULL,
  enabled_since  timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Down Migration

DROP TABLE controlroom.evidence_schedule, controlroom.evidence_bundles;
