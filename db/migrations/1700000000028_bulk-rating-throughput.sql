-- Bulk rating throughput: the rated_id trigger (migration 1700000000023) runs only where it changes
-- something. A PL/pgSQL call per row was about a third of the database's time to rate a lane and of
-- COPYing a pending one in; the result is the same as before for every row.
--
-- INSERT: a pending lane without a rated_id (every lane an upload COPYs in) is left as it is, which is
-- what the function would do. Any other row goes through the function as before.
--
-- UPDATE: the function is skipped when the row already holds what it would make it hold:
--   * a lane that has a rated_id keeps it (a later UPDATE of a rated lane, as before);
--   * a lane that is not rated has none;
--   * a lane becoming rated holds a rated_id that this very statement took from the sequence, i.e. it
--     equals currval() of the session. The bulk worker takes the number itself in its UPDATE
--     (`rated_id = nextval(...)`), so each rating still gets exactly one number from the sequence,
--     handed out before commit like a bigserial. Any other value is replaced by the function with a
--     fresh nextval, as before. (A session that sets rated_id without ever calling nextval gets
--     "currval ... is not yet defined in this session": a rated_id is the sequence's to hand out.)
-- The CASE fixes the order of evaluation, so currval() is only called for a lane becoming rated with
-- a rated_id already set.

-- Up Migration

DROP TRIGGER bulk_lanes_stamp_rated_id ON controlroom.bulk_lanes;

CREATE TRIGGER bulk_lanes_stamp_rated_id_insert BEFORE INSERT ON controlroom.bulk_lanes
  FOR EACH ROW WHEN (NEW.status = 'rated' OR NEW.rated_id IS NOT NULL)
  EXECUTE FUNCTION controlroom.bulk_lanes_stamp_rated_id();

CREATE TRIGGER bulk_lanes_stamp_rated_id_update BEFORE UPDATE ON controlroom.bulk_lanes
  FOR EACH ROW WHEN (NOT CASE
      WHEN OLD.rated_id IS NOT NULL THEN NEW.rated_id IS NOT DISTINCT FROM OLD.rated_id
      WHEN NEW.status = 'rated' THEN
        CASE WHEN NEW.rated_id IS NULL THEN false
             ELSE NEW.rated_id = currval('controlroom.bulk_lanes_rated_id_seq') END
      ELSE NEW.rated_id IS NULL
    END)
  EXECUTE FUNCTION controlroom.bulk_lanes_stamp_rated_id();

-- Down Migration

DROP TRIGGER bulk_lanes_stamp_rated_id_update ON controlroom.bulk_lanes;
DROP TRIGGER bulk_lanes_stamp_rated_id_insert ON controlroom.bulk_lanes;
CREATE TRIGGER bulk_lanes_stamp_rated_id BEFORE INSERT OR UPDATE ON controlroom.bulk_lanes
  FOR EACH ROW EXECUTE FUNCTION controlroom.bulk_lanes_stamp_rated_id();
