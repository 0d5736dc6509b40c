-- Incident actions from the Grafana app's Incidents page: an Editor acknowledges an incident there (as the
-- Slack button does, recorded with acknowledged_via 'grafana' and the Grafana user), or adds a note to it.
-- Notes are kept with their author; each is posted once in the page's Slack thread by a queued job.

-- Up Migration

ALTER TABLE controlroom.incidents DROP CONSTRAINT incidents_acknowledged_via_check;
ALTER TABLE controlroom.incidents ADD CONSTRAINT incidents_acknowledged_via_check
  CHECK (acknowledged_via IN ('slack_button', 'slack_resolve', 'alert_resolved', 'grafana'));

CREATE TABLE controlroom.incident_notes (
  id          bigserial PRIMARY KEY,
  incident_id bigint NOT NULL REFERENCES controlroom.incidents(id),
  text        text NOT NULL CHECK (length(text) BETWEEN 1 AND 2000),
  author      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incident_notes_incident_idx ON controlroom.incident_notes (incident_id, id);

-- Down Migration

DROP TABLE controlroom.incident_notes;
UPDATE controlroom.incidents SET acknowledged_via = 'slack_button' WHERE acknowledged_via = 'grafana';
ALTER TABLE controlroom.incidents DROP CONSTRAINT incidents_acknowledged_via_check;
ALTER TABLE controlroom.incidents ADD CONSTRAINT incidents_acknowledged_via_check
  CHECK (acknowledged_via IN ('slack_button', 'slack_resolve', 'alert_resolved'));
