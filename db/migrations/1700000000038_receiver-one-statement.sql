-- The webhook inbox (alerting/receiver/inbox.ts) stores a batch of notifications, their alert state
-- changes and their groups' alert_group jobs in ONE autocommit statement (one round trip, atomic), instead
-- of a transaction of four (BEGIN, insert, graphile_worker.add_jobs, COMMIT).
--
-- graphile_worker.add_jobs returns no row for a keyed job that a worker locked between add_jobs' two
-- steps (it clears the keys of locked jobs, then upserts where the job is not locked). Inside a
-- transaction the inbox added the missing ones again; a single statement cannot loop, so it asks this
-- function to fail the whole statement instead: nothing of the batch is stored, and the inbox runs the
-- statement again. Stored notifications without their jobs would never be acted on (a re-delivery finds
-- its state changes already stored and queues nothing).

-- Up Migration

CREATE FUNCTION controlroom.alert_jobs_queued(expected bigint, queued bigint) RETURNS bigint
  LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF queued < expected THEN
    RAISE EXCEPTION 'queued % of % alert_group jobs: a keyed job was locked mid-add', queued, expected
      USING ERRCODE = 'CRJ01';
  END IF;
  RETURN queued;
END
$$;

-- Down Migration

DROP FUNCTION controlroom.alert_jobs_queued(bigint, bigint);
