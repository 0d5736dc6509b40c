-- The release freeze: what can freeze releases, what was decided, and what GitHub was told.

-- Up Migration

-- Alerts that freeze releases (ErrorBudgetHalfSpent, P1 SLO pages), as the receiver last saw them.
CREATE TABLE controlroom.freeze_triggers (
  source       text NOT NULL,
  fingerprint  text NOT NULL,
  alertname    text NOT NULL,
  slo          text,
  severity     text,
  firing       boolean NOT NULL,
  started_at   timestamptz NOT NULL,
  resolved_at  timestamptz,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source, fingerprint)
);

-- Manual freezes and overrides, with who, why and until when.
CREATE TABLE controlroom.freeze_actions (
  id          bigserial PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('freeze', 'override')),
  reason      text NOT NULL CHECK (length(reason) BETWEEN 3 AND 500),
  actor       text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz,
  ended_at    timestamptz,
  ended_by    text,
  CHECK (kind = 'freeze' OR expires_at IS NOT NULL)
);

-- The state last published (one row), and every change of it.
CREATE TABLE controlroom.freeze_state (
  id          integer PRIMARY KEY CHECK (id = 1),
  frozen      boolean NOT NULL,
  cause       text NOT NULL,
  reason      text NOT NULL,
  since       timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO controlroom.freeze_state (id, frozen, cause, reason, since) VALUES (1, false, 'none', 'No release freeze', now());

CREATE TABLE controlroom.freeze_history (
  id      bigserial PRIMARY KEY,
  frozen  boolean NOT NULL,
  cause   text NOT NULL,
  reason  text NOT NULL,
  at      timestamptz NOT NULL DEFAULT now()
);

-- The commit status we last set per pull request head, so a resync only calls GitHub for changes.
CREATE TABLE controlroom.github_statuses (
  repo         text NOT NULL,
  sha          text NOT NULL,
  pr_number    integer NOT NULL,
  state        text NOT NULL,
  description  text NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repo, sha)
);

-- Down Migration

DROP TABLE controlroom.github_statuses, controlroom.freeze_history, controlroom.freeze_state,
  controlroom.freeze_actions, controlroom.freeze_triggers;
