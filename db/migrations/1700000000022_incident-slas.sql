-- Incident response SLAs: one row per incident of an alert group (from its first firing state change
-- until every alert in it resolved, or a person pressed Resolve), with when it was paged, acknowledged
-- and resolved, and the deadlines the plan's budgets gave it. The times come from the receiver's own
-- rows (alert_events.received_at, the Slack button's transaction time), never from a retry's clock.

-- Up Migration

CREATE TABLE controlroom.incidents (
  id                bigserial PRIMARY KEY,
  source            text NOT NULL,
  group_key         text NOT NULL,
  severity          text NOT NULL CHECK (severity IN ('P1', 'P2', 'P3')),
  -- The alert names firing when it opened (what the incident is about, for people and auditors).
  alertnames        text[] NOT NULL,
  -- The firing state change that opened it: unique, so a retried job cannot open the same incident twice.
  opened_by_event   bigint NOT NULL UNIQUE REFERENCES controlroom.alert_events(id),
  paged_at          timestamptz NOT NULL,
  -- Deadlines fixed when the incident opened (budget by severity, business days in the zone then configured).
  ack_due_at        timestamptz NOT NULL,
  resolve_due_at    timestamptz NOT NULL,
  sla_time_zone     text NOT NULL,
  acknowledged_at   timestamptz,
  acknowledged_by   text,
  acknowledged_via  text CHECK (acknowledged_via IN ('slack_button', 'slack_resolve', 'alert_resolved')),
  resolved_at       timestamptz,
  resolved_by       text,
  resolved_via      text CHECK (resolved_via IN ('alert_resolved', 'slack_resolve')),
  CHECK ((acknowledged_at IS NULL) = (acknowledged_via IS NULL)),
  CHECK ((resolved_at IS NULL) = (resolved_via IS NULL)),
  CHECK (resolved_at IS NULL OR acknowledged_at IS NOT NULL),
  CHECK (acknowledged_at IS NULL OR acknowledged_at >= paged_at),
  CHECK (resolved_at IS NULL OR resolved_at >= paged_at)
);
-- At most one open incident per alert group, whatever runs concurrently.
CREATE UNIQUE INDEX incidents_open_group_idx ON controlroom.incidents (source, group_key) WHERE resolved_at IS NULL;
CREATE INDEX incidents_paged_at_idx ON controlroom.incidents (paged_at);
CREATE INDEX incidents_open_idx ON controlroom.incidents (severity) WHERE resolved_at IS NULL;

-- Which incident a state change belongs to, and whether the incident timeline has looked at it yet
-- (set in the same transaction as the incident change it caused, so a retry never applies it twice).
ALTER TABLE controlroom.alert_events
  ADD COLUMN incident_id bigint REFERENCES controlroom.incidents(id),
  ADD COLUMN incident_checked_at timestamptz;
-- Changes acted on before this migration are history: incidents start with the changes after it.
UPDATE controlroom.alert_events SET incident_checked_at = processed_at WHERE processed_at IS NOT NULL;
CREATE INDEX alert_events_incident_idx ON controlroom.alert_events (incident_id) WHERE incident_id IS NOT NULL;

-- The read API (GET /api/incidents, GET /api/tasks) finds an incident's Slack steps in the audit log and its
-- notify_ops tasks by the alert that created them; Control Room's own tasks are listed newest first.
CREATE INDEX audit_log_slack_page_idx ON audit_log (target, ts) WHERE target LIKE 'slack_pages/%';
CREATE INDEX agent_tasks_alert_fingerprint_idx ON agent_tasks ((payload->'alert'->>'fingerprint')) WHERE fn_name = 'notify_ops';
CREATE INDEX agent_tasks_controlroom_idx ON agent_tasks (fn_name, id) WHERE fn_name IN ('notify_ops', 'bulk_rating');

-- Down Migration

DROP INDEX agent_tasks_controlroom_idx;
DROP INDEX agent_tasks_alert_fingerprint_idx;
DROP INDEX audit_log_slack_page_idx;

DROP INDEX controlroom.alert_events_incident_idx;
ALTER TABLE controlroom.alert_events DROP COLUMN incident_checked_at, DROP COLUMN incident_id;
DROP TABLE controlroom.incidents;
