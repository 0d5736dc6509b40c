-- The release freeze after issue 14: triggers keep their alert labels (the region of ActiveRegionDown,
-- the gate of the plan's release gate) so the reason can name them, and every freeze change is
-- announced in Slack once, threaded per freeze episode.

-- Up Migration

ALTER TABLE controlroom.freeze_triggers ADD COLUMN labels jsonb NOT NULL DEFAULT '{}'::jsonb;

-- One row per freeze_history change that is announced. A row is written before the Slack call and its
-- ts right after it, so a retried job finds the message already posted and does not post it again.
CREATE TABLE controlroom.freeze_announcements (
  history_id  bigint PRIMARY KEY REFERENCES controlroom.freeze_history (id),
  -- The freeze_history id of the episode's first change: its announcement is the thread root.
  episode_id  bigint NOT NULL REFERENCES controlroom.freeze_history (id),
  channel     text NOT NULL,
  channel_id  text,
  ts          text,
  thread_ts   text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  posted_at   timestamptz,
  CHECK ((ts IS NULL) = (posted_at IS NULL))
);
CREATE INDEX freeze_announcements_episode ON controlroom.freeze_announcements (episode_id);

-- Down Migration

DROP TABLE controlroom.freeze_announcements;
ALTER TABLE controlroom.freeze_triggers DROP COLUMN labels;
