-- Pricing drift: which arm of the A/B split rated each bulk lane, and an append-only order of ratings
-- that the exporter folds exactly once (control/rating/drift-collector.ts).
--
-- A lane is rated by an UPDATE (pending -> rated), so it has no insert-ordered id of its own. `rated_id`
-- is taken from a sequence by a trigger when the status changes INTO 'rated' (or a row is inserted as
-- rated); any later UPDATE keeps it, so a rating is counted once whatever happens to the row afterwards.
-- Like a bigserial, the number is handed out before commit: the exporter's id cursor re-checks the gaps
-- a slow or rolled-back rating batch leaves, exactly as it does for the TMS's append-only tables.
-- `arm` is the arm of the split that priced the lane (active, or the candidate taking its share).

-- Up Migration

ALTER TABLE controlroom.bulk_lanes
  ADD COLUMN arm text CHECK (arm IN ('active', 'candidate')),
  ADD COLUMN rated_id bigint;

CREATE SEQUENCE controlroom.bulk_lanes_rated_id_seq AS bigint;

-- Lanes rated before this migration: numbered in job and lane order. Their arm was not recorded; a lane
-- priced by the model that is the candidate now is counted as the candidate's, every other one as the
-- active arm's (only an anomaly flag proves the candidate priced it, so those are the candidate's too).
UPDATE controlroom.bulk_lanes l
   SET rated_id = n.rated_id,
       arm = CASE WHEN 'anomaly' = ANY(l.flags)
                    OR l.model_version IN (SELECT version FROM controlroom.pricing_models WHERE status = 'candidate')
                  THEN 'candidate' ELSE 'active' END
  FROM (SELECT job_id, seq, nextval('controlroom.bulk_lanes_rated_id_seq') AS rated_id
          FROM (SELECT l2.job_id, l2.seq FROM controlroom.bulk_lanes l2
                  JOIN controlroom.bulk_jobs j ON j.id = l2.job_id
                 WHERE l2.status = 'rated' ORDER BY j.created_at, l2.job_id, l2.seq) ordered) n
 WHERE l.job_id = n.job_id AND l.seq = n.seq;

CREATE UNIQUE INDEX bulk_lanes_rated_id_idx ON controlroom.bulk_lanes (rated_id) WHERE rated_id IS NOT NULL;

CREATE FUNCTION controlroom.bulk_lanes_stamp_rated_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.rated_id IS NOT NULL THEN
    NEW.rated_id := OLD.rated_id;
  ELSIF NEW.status = 'rated' THEN
    NEW.rated_id := nextval('controlroom.bulk_lanes_rated_id_seq');
  ELSE
    NEW.rated_id := NULL;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER bulk_lanes_stamp_rated_id BEFORE INSERT OR UPDATE ON controlroom.bulk_lanes
  FOR EACH ROW EXECUTE FUNCTION controlroom.bulk_lanes_stamp_rated_id();

-- The rated lanes as the exporter's id cursor reads them (it follows a table's `id`). A simple view, so
-- `max(id)` and the id ranges use bulk_lanes_rated_id_idx.
CREATE VIEW controlroom.pricing_rated_lanes AS
  SELECT rated_id AS id, model_version, arm, flags, total, miles
    FROM controlroom.bulk_lanes
   WHERE rated_id IS NOT NULL;

-- Down Migration

DROP VIEW controlroom.pricing_rated_lanes;
DROP TRIGGER bulk_lanes_stamp_rated_id ON controlroom.bulk_lanes;
DROP FUNCTION controlroom.bulk_lanes_stamp_rated_id();
DROP INDEX controlroom.bulk_lanes_rated_id_idx;
DROP SEQUENCE controlroom.bulk_lanes_rated_id_seq;
ALTER TABLE controlroom.bulk_lanes DROP COLUMN rated_id, DROP COLUMN arm;
