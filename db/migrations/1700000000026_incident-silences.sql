-- Alertmanager silences an Editor created from the Incidents page ("Silence for…"). A row is written
-- (pending: silence_id NULL) before Alertmanager is called, with its expiry fixed, so a retried or
-- repeated request finds it and either returns the stored silence or adopts the one a crashed attempt
-- created (same matchers, creator, comment and expiry) instead of creating a second one.

-- Up Migration

CREATE TABLE controlroom.incident_silences (
  id           bigserial PRIMARY KEY,
  incident_id  bigint NOT NULL REFERENCES controlroom.incidents(id),
  -- What makes two requests "the same": the Idempotency-Key header, or a digest of the request. Cleared
  -- once the silence has expired, so the same request later makes a new silence.
  request_key  text,
  matchers     jsonb NOT NULL,
  starts_at    timestamptz NOT NULL,
  ends_at      timestamptz NOT NULL CHECK (ends_at > starts_at),
  reason       text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
  created_by   text NOT NULL,
  -- Alertmanager's silence id; NULL while the call is pending (or failed: then the row is not shown).
  silence_id   text UNIQUE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  silenced_at  timestamptz,
  UNIQUE (incident_id, request_key),
  CHECK ((silence_id IS NULL) = (silenced_at IS NULL))
);
CREATE INDEX incident_silences_incident_idx ON controlroom.incident_silences (incident_id, id) WHERE silence_id IS NOT NULL;

-- Down Migration

DROP TABLE controlroom.incident_silences;
