-- Exactly once, step by step; counters that stay exact.
--
-- An action that reaches outside in several steps (a thread reply, then the root update; an escalation
-- post, then its thread note; a deployment review, then its audit) records each step as done before
-- the next one, so a queue retry repeats only the steps that did not happen.

-- Up Migration

-- One row per external side effect done, keyed by what it was (e.g. `slack:escalation:<page>@<generation>`).
-- Written right after the call succeeds; a retry that finds the key skips the call and reuses `result`.
CREATE TABLE controlroom.side_effects (
  key      text PRIMARY KEY,
  result   jsonb NOT NULL DEFAULT '{}'::jsonb,
  done_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX side_effects_done_at_idx ON controlroom.side_effects (done_at);

-- A state change is reported in Slack (in the root or a thread reply) once: reported_at is set when the
-- message that shows it was posted, before the job goes on to update the root.
ALTER TABLE controlroom.alert_events ADD COLUMN reported_at timestamptz;
UPDATE controlroom.alert_events SET reported_at = processed_at WHERE processed_at IS NOT NULL;

-- What Slack last showed (sha256 of the rendered message): a retry does not re-send an update that
-- already went through. root_reserved_at is when the page took one of its channel's root slots
-- (ALERT_STORM_THRESHOLD per minute); taken under a per-channel lock, so concurrent workers cannot overshoot.
ALTER TABLE controlroom.slack_pages ADD COLUMN rendered text, ADD COLUMN root_reserved_at timestamptz;
UPDATE controlroom.slack_pages SET root_reserved_at = created_at WHERE ts IS NOT NULL;
CREATE INDEX slack_pages_channel_reserved_idx ON controlroom.slack_pages (channel, root_reserved_at) WHERE root_reserved_at IS NOT NULL;
ALTER TABLE controlroom.slack_storms ADD COLUMN rendered text;

-- Agent task completions are counted by completed_at, which only a status change INTO success/failed
-- (from queued/running, or an insert as finished) sets. Any other UPDATE, such as the TMS touching the
-- payload of a finished task, keeps it, so the exporter never counts that completion a second time.
ALTER TABLE agent_tasks ADD COLUMN completed_at timestamptz;
ALTER TABLE agent_tasks DISABLE TRIGGER agent_tasks_touch_updated_at;
UPDATE agent_tasks SET completed_at = updated_at WHERE status IN ('success', 'failed');
ALTER TABLE agent_tasks ENABLE TRIGGER agent_tasks_touch_updated_at;
CREATE INDEX agent_tasks_completion_idx ON agent_tasks (completed_at) WHERE status IN ('success', 'failed');

CREATE FUNCTION agent_tasks_stamp_completed_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status NOT IN ('success', 'failed') THEN
    NEW.completed_at := NULL;
  ELSIF TG_OP = 'INSERT' THEN
    NEW.completed_at := coalesce(NEW.completed_at, NEW.updated_at, clock_timestamp());
  ELSIF OLD.status NOT IN ('success', 'failed') THEN
    NEW.completed_at := clock_timestamp();
  ELSE
    NEW.completed_at := OLD.completed_at;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER agent_tasks_stamp_completed_at BEFORE INSERT OR UPDATE ON agent_tasks
  FOR EACH ROW EXECUTE FUNCTION agent_tasks_stamp_completed_at();

-- Down Migration

DROP TRIGGER agent_tasks_stamp_completed_at ON agent_tasks;
DROP FUNCTION agent_tasks_stamp_completed_at();
DROP INDEX agent_tasks_completion_idx;
ALTER TABLE agent_tasks DROP COLUMN completed_at;
ALTER TABLE controlroom.slack_storms DROP COLUMN rendered;
DROP INDEX controlroom.slack_pages_channel_reserved_idx;
ALTER TABLE controlroom.slack_pages DROP COLUMN root_reserved_at, DROP COLUMN rendered;
ALTER TABLE controlroom.alert_events DROP COLUMN reported_at;
DROP TABLE controlroom.side_effects;
