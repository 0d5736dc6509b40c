-- Regions and failover: health of each region, the traffic weights the TMS router follows, the fenced
-- control lease, stepped cutovers, their history, and failover drills.
--
-- Every table has a `scope`: 'live' is what GET /api/regions/routing serves to the TMS router; a drill
-- runs the same code in its own scope ('drill-<id>') against local test regions, so it never touches
-- live routing.

-- Up Migration

CREATE TABLE controlroom.regions (
  scope                  text NOT NULL DEFAULT 'live',
  name                   text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
  role                   text NOT NULL CHECK (role IN ('primary', 'secondary')),
  base_url               text NOT NULL CHECK (base_url ~ '^https?://'),
  health_url             text NOT NULL CHECK (health_url ~ '^https?://'),
  replication_lag_url    text CHECK (replication_lag_url ~ '^https?://'),
  traffic_weight         integer NOT NULL DEFAULT 0 CHECK (traffic_weight BETWEEN 0 AND 100),
  -- The active region takes the writes; it always takes some traffic.
  active                 boolean NOT NULL DEFAULT false,
  healthy                boolean NOT NULL DEFAULT false,
  consecutive_failures   integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
  consecutive_successes  integer NOT NULL DEFAULT 0 CHECK (consecutive_successes >= 0),
  last_check_at          timestamptz,
  last_latency_ms        integer,
  last_error             text,
  health_changed_at      timestamptz,
  replication_lag_seconds double precision CHECK (replication_lag_seconds >= 0),
  replication_lag_at     timestamptz,
  updated_at             timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, name),
  CONSTRAINT regions_active_takes_traffic CHECK (NOT active OR traffic_weight > 0),
  CONSTRAINT regions_one_streak CHECK (NOT (consecutive_failures > 0 AND consecutive_successes > 0))
);
-- One primary and one secondary per scope (deferred, so a reconfiguration may swap them).
ALTER TABLE controlroom.regions
  ADD CONSTRAINT regions_one_per_role UNIQUE (scope, role) DEFERRABLE INITIALLY DEFERRED;
-- At most one active region per scope (deferred: a failover flips both rows in one statement).
ALTER TABLE controlroom.regions
  ADD CONSTRAINT regions_one_active EXCLUDE USING btree (scope WITH =) WHERE (active) DEFERRABLE INITIALLY DEFERRED;

-- At commit: the weights of a scope's regions sum to 100 (so never all at 0) and exactly one is active.
-- The code moves weights in one transaction; this makes a half-applied change impossible.
CREATE FUNCTION controlroom.check_region_weights() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  s text;
  n integer;
  total integer;
  actives integer;
BEGIN
  IF TG_OP = 'DELETE' THEN s := OLD.scope; ELSE s := NEW.scope; END IF;
  SELECT count(*), COALESCE(sum(traffic_weight), 0), count(*) FILTER (WHERE active)
    INTO n, total, actives
    FROM controlroom.regions WHERE scope = s;
  IF n > 0 AND total <> 100 THEN
    RAISE EXCEPTION 'traffic weights of the regions in scope % sum to %, not 100', s, total
      USING ERRCODE = 'check_violation', CONSTRAINT = 'regions_weights_sum_100';
  END IF;
  IF n > 0 AND actives <> 1 THEN
    RAISE EXCEPTION 'scope % has % active regions, not exactly one', s, actives
      USING ERRCODE = 'check_violation', CONSTRAINT = 'regions_one_active_region';
  END IF;
  RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER regions_weights_sum_100
  AFTER INSERT OR UPDATE OR DELETE ON controlroom.regions
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION controlroom.check_region_weights();

-- Health check history for the Failover page; the checker prunes rows older than 24 h.
CREATE TABLE controlroom.region_checks (
  id           bigserial PRIMARY KEY,
  scope        text NOT NULL DEFAULT 'live',
  region       text NOT NULL,
  at           timestamptz NOT NULL DEFAULT now(),
  ok           boolean NOT NULL,
  latency_ms   integer,
  status_code  integer,
  error        text
);
CREATE INDEX region_checks_region_at_idx ON controlroom.region_checks (scope, region, at DESC);
CREATE INDEX region_checks_at_idx ON controlroom.region_checks (at);

-- One row per scope: the lease (who may act) with its fencing epoch, the write freeze, and the
-- stepped cutover in progress (so it survives restarts and continues on the next lease holder).
CREATE TABLE controlroom.failover_control (
  scope             text PRIMARY KEY,
  epoch             bigint NOT NULL DEFAULT 0 CHECK (epoch >= 0),
  lease_holder      text,
  lease_expires_at  timestamptz,
  write_frozen      boolean NOT NULL DEFAULT false,
  frozen_since      timestamptz,
  cutover           jsonb,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  CHECK (write_frozen = (frozen_since IS NOT NULL)),
  -- A write freeze exists only for a cutover in progress: it cannot be left behind.
  CHECK (NOT write_frozen OR cutover IS NOT NULL),
  CHECK ((lease_holder IS NULL) = (lease_expires_at IS NULL))
);
INSERT INTO controlroom.failover_control (scope) VALUES ('live');

-- Every failover and traffic shift, automatic or manual, with who, why and how it ended.
CREATE TABLE controlroom.failover_events (
  id           bigserial PRIMARY KEY,
  scope        text NOT NULL DEFAULT 'live',
  kind         text NOT NULL CHECK (kind IN ('auto', 'manual', 'shift', 'drill')),
  from_region  text,
  to_region    text,
  steps        integer[],
  actor        text NOT NULL,
  reason       text,
  forced       boolean NOT NULL DEFAULT false,
  epoch        bigint NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  outcome      text NOT NULL DEFAULT 'in_progress'
               CHECK (outcome IN ('in_progress', 'completed', 'aborted', 'superseded', 'failed')),
  details      jsonb NOT NULL DEFAULT '{}'::jsonb,
  CHECK ((outcome = 'in_progress') = (finished_at IS NULL)),
  CHECK (NOT forced OR length(reason) >= 3)
);
CREATE INDEX failover_events_scope_id_idx ON controlroom.failover_events (scope, id DESC);
-- At most one cutover in progress per scope.
CREATE UNIQUE INDEX failover_events_one_in_progress ON controlroom.failover_events (scope) WHERE outcome = 'in_progress';

-- Failover drills: a planned failover between local test regions, with its measured RTO and RPO.
CREATE TABLE controlroom.failover_drills (
  id                   bigserial PRIMARY KEY,
  scope                text NOT NULL,
  event_id             bigint REFERENCES controlroom.failover_events(id),
  actor                text NOT NULL,
  started_at           timestamptz NOT NULL DEFAULT now(),
  finished_at          timestamptz,
  outcome              text NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'passed', 'failed')),
  rto_seconds          double precision,
  rpo_seconds          double precision,
  writes_acknowledged  integer,
  writes_lost          integer,
  details              jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX failover_drills_started_idx ON controlroom.failover_drills (started_at DESC);

-- Down Migration

DROP TABLE controlroom.failover_drills, controlroom.failover_events, controlroom.failover_control,
  controlroom.region_checks, controlroom.regions;
DROP FUNCTION controlroom.check_region_weights();
