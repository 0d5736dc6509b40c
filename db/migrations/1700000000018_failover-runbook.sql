-- The failover runbook (issue 18): background jobs paused and drained around the move of the write role,
-- the per-region pause / resume / queue-depth endpoints, the health checks' round-trip histogram (read
-- latency), pin-back events, and drills and game days judged against the RTO / RPO targets.

-- Up Migration

ALTER TABLE controlroom.regions
  ADD COLUMN pause_url        text CHECK (pause_url ~ '^https?://'),
  ADD COLUMN resume_url       text CHECK (resume_url ~ '^https?://'),
  ADD COLUMN queue_depth_url  text CHECK (queue_depth_url ~ '^https?://'),
  -- Cumulative histogram of the health checks' round trips (the read latency the plan bounds at p95 < 150
  -- ms): counts per bucket of controlroom/failover/health.ts CHECK_LATENCY_BUCKETS, never reset, so the
  -- exported series is a true counter across restarts and lease holders.
  ADD COLUMN check_latency_buckets  bigint[] NOT NULL DEFAULT '{}',
  ADD COLUMN check_latency_count    bigint NOT NULL DEFAULT 0 CHECK (check_latency_count >= 0),
  ADD COLUMN check_latency_sum      double precision NOT NULL DEFAULT 0 CHECK (check_latency_sum >= 0);

-- jobs_paused: the flag the TMS reads in GET /api/regions/routing (background work stays paused while it
-- is set). jobs_resume: resume calls still owed to regions' resume endpoints (retried until they answer 2xx).
ALTER TABLE controlroom.failover_control
  ADD COLUMN jobs_paused  boolean NOT NULL DEFAULT false,
  ADD COLUMN jobs_resume  jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(jobs_resume) = 'array'),
  -- Background jobs are paused only for a cutover in progress: the flag cannot be left behind.
  ADD CONSTRAINT failover_control_jobs_paused_needs_cutover CHECK (NOT jobs_paused OR cutover IS NOT NULL);

ALTER TABLE controlroom.failover_events DROP CONSTRAINT failover_events_kind_check;
ALTER TABLE controlroom.failover_events
  ADD CONSTRAINT failover_events_kind_check CHECK (kind IN ('auto', 'manual', 'shift', 'drill', 'pin_back'));
-- Integrity checks still to run after a cutover (the lease holder looks for them on every poll).
CREATE INDEX failover_events_integrity_pending_idx ON controlroom.failover_events (scope)
  WHERE details->'integrity'->>'status' = 'pending';

ALTER TABLE controlroom.failover_drills
  ADD COLUMN kind                text NOT NULL DEFAULT 'drill' CHECK (kind IN ('drill', 'gameday')),
  ADD COLUMN scenario            text,
  ADD COLUMN rto_target_seconds  double precision CHECK (rto_target_seconds > 0),
  ADD COLUMN rpo_target_seconds  double precision CHECK (rpo_target_seconds > 0),
  ADD COLUMN rto_met             boolean,
  ADD COLUMN rpo_met             boolean,
  ADD CONSTRAINT failover_drills_gameday_has_scenario CHECK ((kind = 'gameday') = (scenario IS NOT NULL));

-- Down Migration

ALTER TABLE controlroom.failover_drills
  DROP CONSTRAINT failover_drills_gameday_has_scenario,
  DROP COLUMN kind, DROP COLUMN scenario, DROP COLUMN rto_target_seconds, DROP COLUMN rpo_target_seconds,
  DROP COLUMN rto_met, DROP COLUMN rpo_met;
DROP INDEX controlroom.failover_events_integrity_pending_idx;
DELETE FROM controlroom.failover_events WHERE kind = 'pin_back';
ALTER TABLE controlroom.failover_events DROP CONSTRAINT failover_events_kind_check;
ALTER TABLE controlroom.failover_events
  ADD CONSTRAINT failover_events_kind_check CHECK (kind IN ('auto', 'manual', 'shift', 'drill'));
ALTER TABLE controlroom.failover_control
  DROP CONSTRAINT failover_control_jobs_paused_needs_cutover, DROP COLUMN jobs_paused, DROP COLUMN jobs_resume;
ALTER TABLE controlroom.regions
  DROP COLUMN pause_url, DROP COLUMN resume_url, DROP COLUMN queue_depth_url,
  DROP COLUMN check_latency_buckets, DROP COLUMN check_latency_count, DROP COLUMN check_latency_sum;
