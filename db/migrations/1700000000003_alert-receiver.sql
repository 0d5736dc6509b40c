-- The alert receiver's durable inbox. A notification is stored before the webhook is answered; the
-- actions (Slack, overage tasks) run afterwards from these rows through the job queue.

-- Up Migration

CREATE TABLE controlroom.alert_notifications (
  id           bigserial PRIMARY KEY,
  source       text NOT NULL CHECK (source IN ('alertmanager', 'grafana')),
  group_key    text NOT NULL,
  status       text NOT NULL,
  receiver     text,
  payload      jsonb NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per alert state change; the unique key is what makes a redelivered notification act once.
CREATE TABLE controlroom.alert_events (
  id               bigserial PRIMARY KEY,
  notification_id  bigint NOT NULL REFERENCES controlroom.alert_notifications(id),
  source           text NOT NULL,
  group_key        text NOT NULL,
  fingerprint      text NOT NULL,
  status           text NOT NULL CHECK (status IN ('firing', 'resolved')),
  starts_at        timestamptz NOT NULL,
  ends_at          timestamptz,
  alertname        text NOT NULL,
  severity         text,
  labels           jsonb NOT NULL,
  annotations      jsonb NOT NULL DEFAULT '{}'::jsonb,
  generator_url    text,
  received_at      timestamptz NOT NULL DEFAULT now(),
  processed_at     timestamptz,
  UNIQUE (source, group_key, fingerprint, starts_at, status)
);
CREATE INDEX alert_events_unprocessed_idx ON controlroom.alert_events (source, group_key) WHERE processed_at IS NULL;
CREATE INDEX alert_events_group_idx ON controlroom.alert_events (source, group_key, fingerprint, id);

-- One Slack root message per alert group (or the storm digest it was folded into).
CREATE TABLE controlroom.slack_pages (
  id             bigserial PRIMARY KEY,
  source         text NOT NULL,
  group_key      text NOT NULL,
  channel        text NOT NULL,
  channel_id     text,
  severity       text NOT NULL,
  ts             text,
  storm_id       bigint,
  state          text NOT NULL DEFAULT 'firing' CHECK (state IN ('firing', 'acknowledged', 'resolved')),
  acked_by       text,
  acked_at       timestamptz,
  resolved_by    text,
  resolved_at    timestamptz,
  escalated_at   timestamptz,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (source, group_key)
);
CREATE INDEX slack_pages_channel_created_idx ON controlroom.slack_pages (channel, created_at);

-- A storm digest: one Slack message standing for many alert groups in one channel.
CREATE TABLE controlroom.slack_storms (
  id          bigserial PRIMARY KEY,
  channel     text NOT NULL,
  channel_id  text,
  ts          text,
  opened_at   timestamptz NOT NULL DEFAULT now(),
  closed_at   timestamptz
);
CREATE UNIQUE INDEX slack_storms_open_idx ON controlroom.slack_storms (channel) WHERE closed_at IS NULL;

-- Overage notices: one per company, feature, threshold and period, whatever the alert does.
CREATE TABLE controlroom.overage_notices (
  company_id     uuid NOT NULL,
  feature        text NOT NULL,
  threshold      integer NOT NULL,
  period_start   date NOT NULL,
  agent_task_id  bigint NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (company_id, feature, threshold, period_start)
);

-- Down Migration

DROP TABLE controlroom.overage_notices, controlroom.slack_storms, controlroom.slack_pages,
  controlroom.alert_events, controlroom.alert_notifications;
