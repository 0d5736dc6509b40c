-- Demo incidents triggered on demand (`controlroom demo --incident NAME`), on top of the hourly
-- schedule in db/demo/schedule.ts. The demo traffic writer reads the rows whose window covers its tick,
-- so a running `controlroom start` (or `controlroom demo`) plays the incident from its next tick.

-- Up Migration

CREATE TABLE controlroom.demo_incidents (
  id           bigserial PRIMARY KEY,
  kind         text NOT NULL CHECK (kind IN ('error_burst', 'slow_quotes', 'agent_failures')),
  starts_at    timestamptz NOT NULL,
  ends_at      timestamptz NOT NULL CHECK (ends_at > starts_at),
  requested_by text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX demo_incidents_ends_at ON controlroom.demo_incidents (ends_at);

-- Down Migration

DROP TABLE controlroom.demo_incidents;
