-- A page root (and a storm digest) is posted once, even across a crash between Slack's answer and its record.
--
-- Before posting a root the pager commits root_attempted_at (its intent), and posts the root with Slack
-- message metadata naming the page and its generation. A retry that finds an intent but no ts first
-- looks for that message in the channel's history (from the intent time on) and adopts it, instead of
-- posting a second root. channel_id is kept as soon as it is known, because the history needs the id.
-- Storm digests do the same with post_attempted_at and the storm id.

-- Up Migration

ALTER TABLE controlroom.slack_pages ADD COLUMN root_attempted_at timestamptz;
ALTER TABLE controlroom.slack_storms ADD COLUMN post_attempted_at timestamptz;

-- Down Migration

ALTER TABLE controlroom.slack_storms DROP COLUMN post_attempted_at;
ALTER TABLE controlroom.slack_pages DROP COLUMN root_attempted_at;
