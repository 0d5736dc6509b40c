-- Bulk acceptance COPYs a whole upload (up to BULK_MAX_LANES lanes) into bulk_lanes in one statement. The
-- foreign key to bulk_jobs ran one lookup per lane (a quarter to a third of the database's time for the
-- COPY); the same guarantee is checked here once per statement. (The other per-row cost of that COPY, the
-- plpgsql rated_id trigger, is skipped for pending lanes by migration 1700000000028.)

-- Up Migration

ALTER TABLE controlroom.bulk_lanes DROP CONSTRAINT bulk_lanes_job_id_fkey;

-- Every lane belongs to an existing job. Checked once per INSERT/COPY statement over its new rows (a
-- set-based anti-join): a missing job fails the statement with foreign_key_violation as the constraint
-- did. The jobs are locked FOR KEY SHARE as the constraint locked them, so a job cannot be deleted while a
-- transaction that adds lanes to it is open.
CREATE FUNCTION controlroom.bulk_lanes_check_job() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  missing uuid;
BEGIN
  PERFORM 1 FROM controlroom.bulk_jobs j WHERE j.id IN (SELECT job_id FROM new_lanes) FOR KEY SHARE OF j;
  SELECT n.job_id INTO missing FROM (SELECT DISTINCT job_id FROM new_lanes) n
   WHERE NOT EXISTS (SELECT 1 FROM controlroom.bulk_jobs j WHERE j.id = n.job_id) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'bulk_lanes: job % does not exist in bulk_jobs', missing USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER bulk_lanes_check_job AFTER INSERT ON controlroom.bulk_lanes
  REFERENCING NEW TABLE AS new_lanes FOR EACH STATEMENT EXECUTE FUNCTION controlroom.bulk_lanes_check_job();

-- A lane never moves to another job, and a job never changes its id (both would bypass the check above).
CREATE FUNCTION controlroom.bulk_lanes_refuse_rekey() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%: the job id of a bulk job or lane cannot change', TG_TABLE_NAME USING ERRCODE = 'foreign_key_violation';
END $$;
CREATE TRIGGER bulk_lanes_refuse_rekey BEFORE UPDATE OF job_id ON controlroom.bulk_lanes
  FOR EACH ROW WHEN (OLD.job_id IS DISTINCT FROM NEW.job_id) EXECUTE FUNCTION controlroom.bulk_lanes_refuse_rekey();
CREATE TRIGGER bulk_jobs_refuse_rekey BEFORE UPDATE OF id ON controlroom.bulk_jobs
  FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION controlroom.bulk_lanes_refuse_rekey();

-- ON DELETE CASCADE, per statement.
CREATE FUNCTION controlroom.bulk_jobs_delete_lanes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM controlroom.bulk_lanes WHERE job_id IN (SELECT id FROM old_jobs);
  RETURN NULL;
END $$;
CREATE TRIGGER bulk_jobs_delete_lanes AFTER DELETE ON controlroom.bulk_jobs
  REFERENCING OLD TABLE AS old_jobs FOR EACH STATEMENT EXECUTE FUNCTION controlroom.bulk_jobs_delete_lanes();

-- Down Migration

DROP TRIGGER bulk_jobs_delete_lanes ON controlroom.bulk_jobs;
DROP FUNCTION controlroom.bulk_jobs_delete_lanes();
DROP TRIGGER bulk_jobs_refuse_rekey ON controlroom.bulk_jobs;
DROP TRIGGER bulk_lanes_refuse_rekey ON controlroom.bulk_lanes;
DROP FUNCTION controlroom.bulk_lanes_refuse_rekey();
DROP TRIGGER bulk_lanes_check_job ON controlroom.bulk_lanes;
DROP FUNCTION controlroom.bulk_lanes_check_job();
ALTER TABLE controlroom.bulk_lanes
  ADD CONSTRAINT bulk_lanes_job_id_fkey FOREIGN KEY (job_id) REFERENCES controlroom.bulk_jobs(id) ON DELETE CASCADE;
