-- Bulk lanes stored in chunks: many lanes per row, and a chunk's results written as a NEW row.
--
-- Before: one bulk_lanes row per lane, COPYed in at upload (a heap row and two index entries per lane,
-- 1 s for 100k lanes) and then UPDATEd once per lane when rated (a new row version and two index
-- entries per lane again). Now an upload writes one bulk_lane_chunks row per BULK_RATE_BATCH lanes (the
-- lanes as one text), and the worker writes one bulk_lane_results row per rated chunk (the
-- results as arrays) in the transaction that moves the job's counters. The result row's primary key is
-- the chunk's, so a chunk is rated once whatever happens: after a kill -9 the chunks without a result
-- row are rated again, the others never (a second writer's INSERT finds the row and counts nothing).
--
-- `controlroom.bulk_lanes` stays, as a view with the same columns: the per-lane table (renamed
-- bulk_lane_rows, which keeps the lanes written before this migration and any written through the
-- view) and the chunked lanes, one row per lane. Writes through the view go to bulk_lane_rows with
-- every trigger and check they had; a chunked lane cannot be changed lane by lane.
--
-- Pricing drift: the exporter folded one pricing_rated_lanes row per rated lane by its rated_id. A
-- chunk's lanes share their chunk's row, so each rated chunk writes one bulk_rating_tallies row per arm
-- (its lanes, anomaly and needs_review lanes, cents and miles) numbered from the same sequence; the
-- view pricing_rated_batches holds those tallies and the per-lane rows (as tallies of one lane), one
-- row per id, which the collector sums.

-- Up Migration

ALTER TABLE controlroom.bulk_lanes RENAME TO bulk_lane_rows;

-- A job's deletion removes its per-lane rows (the chunks go by their foreign keys).
CREATE OR REPLACE FUNCTION controlroom.bulk_jobs_delete_lanes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM controlroom.bulk_lane_rows WHERE job_id IN (SELECT id FROM old_jobs);
  RETURN NULL;
END $$;

-- Lanes first_seq .. first_seq + lanes - 1 of a job, in seq order. The chunks of a job cover its seqs
-- 1..lanes_total without gaps (the upload numbers them as it writes them). `lanes_text` holds the lanes
-- as the upload validated them, one line each (`line<TAB>origin<TAB>destination<TAB>equipment<TAB>
-- pickup_date`, lines separated by LF), each field escaped as in COPY text (`\\`, `\t`, `\n`, `\r`),
-- so a raw tab or LF is only ever a separator. Plain text, not arrays: storing it is a copy and its
-- compression, where parsing five arrays of 5,000 elements doubled the database's time per upload;
-- the worker splits it itself, and the bulk_lanes view splits it for readers.
CREATE TABLE controlroom.bulk_lane_chunks (
  job_id        uuid NOT NULL REFERENCES controlroom.bulk_jobs(id) ON DELETE CASCADE,
  chunk         integer NOT NULL CHECK (chunk > 0),
  first_seq     integer NOT NULL CHECK (first_seq > 0),
  lanes         integer NOT NULL CHECK (lanes > 0),
  lanes_text    text NOT NULL,
  PRIMARY KEY (job_id, chunk)
);

-- A field of lanes_text as it was validated: COPY text's escapes undone (only called for a field that
-- has a backslash; the view checks first).
CREATE FUNCTION controlroom.bulk_unescape(field text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(string_agg(CASE WHEN m[1] IS NULL THEN m[2]
                                  WHEN m[1] = 't' THEN E'\t' WHEN m[1] = 'n' THEN E'\n' WHEN m[1] = 'r' THEN E'\r'
                                  ELSE m[1] END, '' ORDER BY n), '')
    FROM regexp_matches(field, E'\\\\(.)|([^\\\\]+)', 'gs') WITH ORDINALITY AS t(m, n)
$$;

-- The results of one chunk, line by line aligned with its lanes_text. `results_text` has a line per lane:
-- `a` or `c` (the active model or the candidate priced it), then by tabs the flag bits (FLAG_BITS of
-- control/rating/engine.ts), miles, and linehaul, fuel, total and per-mile in integer cents; a lane the
-- engine could not rate is the line `x`, its reason in `errors` at its position (NULL when no lane failed).
-- One text, not seven arrays, for the reason lanes_text is one.
CREATE TABLE controlroom.bulk_lane_results (
  job_id           uuid NOT NULL,
  chunk            integer NOT NULL,
  active_model     text NOT NULL,
  candidate_model  text,
  lanes_rated      integer NOT NULL,
  lanes_failed     integer NOT NULL,
  results_text     text NOT NULL,
  errors           text[],
  PRIMARY KEY (job_id, chunk),
  FOREIGN KEY (job_id, chunk) REFERENCES controlroom.bulk_lane_chunks (job_id, chunk) ON DELETE CASCADE
);

-- What one rated chunk adds to the pricing drift totals, per arm. `id` comes from the rated-id sequence
-- in the statement that writes the chunk's results (handed out before commit, as a bigserial).
CREATE TABLE controlroom.bulk_rating_tallies (
  id                  bigint PRIMARY KEY,
  job_id              uuid NOT NULL,
  chunk               integer NOT NULL,
  model_version       text NOT NULL,
  arm                 text NOT NULL CHECK (arm IN ('active', 'candidate')),
  lanes               integer NOT NULL,
  anomaly_lanes       integer NOT NULL,
  needs_review_lanes  integer NOT NULL,
  cents               bigint NOT NULL,
  miles               double precision NOT NULL,
  UNIQUE (job_id, chunk, arm),
  FOREIGN KEY (job_id, chunk) REFERENCES controlroom.bulk_lane_results (job_id, chunk) ON DELETE CASCADE
);

-- Flag bits as the per-lane API lists them (engine flagList order).
CREATE FUNCTION controlroom.bulk_flag_names(bits smallint) RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT array_remove(ARRAY[
    CASE WHEN bits & 1 <> 0 THEN 'minimum_charge' END,
    CASE WHEN bits & 2 <> 0 THEN 'margin_floor' END,
    CASE WHEN bits & 4 <> 0 THEN 'regional_cap' END,
    CASE WHEN bits & 8 <> 0 THEN 'needs_review' END,
    CASE WHEN bits & 16 <> 0 THEN 'anomaly' END], NULL)
$$;

-- The chunked lanes, one row per lane, with the columns of the per-lane table and the chunk's bounds:
-- a filter on chunk_first_seq / chunk_lanes reaches the chunk scan, so a page of results reads only the
-- chunks it covers.
CREATE VIEW controlroom.bulk_chunk_lanes AS
  SELECT c.job_id, c.first_seq + (u.i - 1)::integer AS seq, u.f[1]::integer AS line,
         CASE WHEN strpos(u.f[2], E'\\') = 0 THEN u.f[2] ELSE controlroom.bulk_unescape(u.f[2]) END AS origin,
         CASE WHEN strpos(u.f[3], E'\\') = 0 THEN u.f[3] ELSE controlroom.bulk_unescape(u.f[3]) END AS destination,
         u.f[4] AS equipment, u.f[5]::date AS pickup_date,
         CASE WHEN r.job_id IS NULL THEN 'pending' WHEN u.g[1] = 'x' THEN 'failed' ELSE 'rated' END AS status,
         u.g[3]::double precision AS miles,
         (u.g[4]::bigint / 100.0)::numeric(12,2) AS linehaul,
         (u.g[5]::bigint / 100.0)::numeric(12,2) AS fuel,
         (u.g[6]::bigint / 100.0)::numeric(12,2) AS total,
         (u.g[7]::bigint / 100.0)::numeric(10,4) AS per_mile,
         CASE u.g[1] WHEN 'c' THEN r.candidate_model WHEN 'a' THEN r.active_model END AS model_version,
         CASE WHEN r.job_id IS NULL THEN NULL WHEN u.g[1] = 'x' THEN '{}'::text[]
              ELSE controlroom.bulk_flag_names(u.g[2]::smallint) END AS flags,
         u.error,
         CASE u.g[1] WHEN 'c' THEN 'candidate' WHEN 'a' THEN 'active' END AS arm,
         t.id AS rated_id,
         c.chunk, c.first_seq AS chunk_first_seq, c.lanes AS chunk_lanes
    FROM controlroom.bulk_lane_chunks c
    LEFT JOIN controlroom.bulk_lane_results r ON r.job_id = c.job_id AND r.chunk = c.chunk
    CROSS JOIN LATERAL (
      SELECT string_to_array(z.lane, E'\t') AS f, string_to_array(z.result, E'\t') AS g, z.error, z.i
        FROM ROWS FROM (string_to_table(c.lanes_text, E'\n'), string_to_table(r.results_text, E'\n'), unnest(r.errors))
             WITH ORDINALITY AS z(lane, result, error, i)
    ) u
    LEFT JOIN controlroom.bulk_rating_tallies t
           ON t.job_id = c.job_id AND t.chunk = c.chunk
          AND t.arm = CASE u.g[1] WHEN 'c' THEN 'candidate' WHEN 'a' THEN 'active' END;

-- Every lane, wherever it is stored. rated_id: the lane's own number for a per-lane row; for a chunked
-- lane, its chunk's tally for its arm (shared by those lanes).
CREATE VIEW controlroom.bulk_lanes AS
  SELECT job_id, seq, line, origin, destination, equipment, pickup_date, status, miles, linehaul, fuel, total,
         per_mile, model_version, flags, error, arm, rated_id
    FROM controlroom.bulk_lane_rows
  UNION ALL
  SELECT job_id, seq, line, origin, destination, equipment, pickup_date, status, miles, linehaul, fuel, total,
         per_mile, model_version, flags, error, arm, rated_id
    FROM controlroom.bulk_chunk_lanes;
ALTER VIEW controlroom.bulk_lanes ALTER COLUMN status SET DEFAULT 'pending';

-- Writes through the view: to the per-lane table, whose triggers (the job check, the rated_id stamp, no
-- re-keying) run as they did. A chunked lane is written only with its chunk.
CREATE FUNCTION controlroom.bulk_lanes_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO controlroom.bulk_lane_rows (job_id, seq, line, origin, destination, equipment, pickup_date, status,
                                            miles, linehaul, fuel, total, per_mile, model_version, flags, error, arm, rated_id)
    VALUES (NEW.job_id, NEW.seq, NEW.line, NEW.origin, NEW.destination, NEW.equipment, NEW.pickup_date,
            coalesce(NEW.status, 'pending'), NEW.miles, NEW.linehaul, NEW.fuel, NEW.total, NEW.per_mile,
            NEW.model_version, NEW.flags, NEW.error, NEW.arm, NEW.rated_id);
    RETURN NEW;
  ELSIF TG_OP = 'UPDATE' THEN
    UPDATE controlroom.bulk_lane_rows
       SET job_id = NEW.job_id, seq = NEW.seq, line = NEW.line, origin = NEW.origin, destination = NEW.destination,
           equipment = NEW.equipment, pickup_date = NEW.pickup_date, status = NEW.status, miles = NEW.miles,
           linehaul = NEW.linehaul, fuel = NEW.fuel, total = NEW.total, per_mile = NEW.per_mile,
           model_version = NEW.model_version, flags = NEW.flags, error = NEW.error, arm = NEW.arm,
           rated_id = NEW.rated_id
     WHERE job_id = OLD.job_id AND seq = OLD.seq;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'bulk_lanes: lane % of job % is stored in a chunk (bulk_lane_chunks) and is written only with its chunk',
        OLD.seq, OLD.job_id USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN NEW;
  ELSE
    DELETE FROM controlroom.bulk_lane_rows WHERE job_id = OLD.job_id AND seq = OLD.seq;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'bulk_lanes: lane % of job % is stored in a chunk (bulk_lane_chunks); delete its job instead',
        OLD.seq, OLD.job_id USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN OLD;
  END IF;
END $$;
CREATE TRIGGER bulk_lanes_write INSTEAD OF INSERT OR UPDATE OR DELETE ON controlroom.bulk_lanes
  FOR EACH ROW EXECUTE FUNCTION controlroom.bulk_lanes_write();

-- The per-lane view of rated lanes, kept for readers; a chunked lane's id is its tally's (not unique).
CREATE OR REPLACE VIEW controlroom.pricing_rated_lanes AS
  SELECT rated_id AS id, model_version, arm, flags, total, miles
    FROM controlroom.bulk_lanes
   WHERE rated_id IS NOT NULL;

-- One row per rated id, what the pricing drift collector folds: a chunk's tally per arm, or a per-lane
-- row as a tally of one lane. Both branches are indexed on the id, so the collector's id ranges and
-- max(id) stay index scans.
CREATE VIEW controlroom.pricing_rated_batches AS
  SELECT id, model_version, arm, lanes, anomaly_lanes, needs_review_lanes, cents, miles
    FROM controlroom.bulk_rating_tallies
  UNION ALL
  SELECT rated_id, model_version, arm, 1, ('anomaly' = ANY(flags))::integer, ('needs_review' = ANY(flags))::integer,
         coalesce(round(total * 100), 0)::bigint, coalesce(miles, 0)
    FROM controlroom.bulk_lane_rows
   WHERE rated_id IS NOT NULL;

-- Down Migration

DROP VIEW controlroom.pricing_rated_batches;
DROP VIEW controlroom.pricing_rated_lanes;
DROP TRIGGER bulk_lanes_write ON controlroom.bulk_lanes;
DROP FUNCTION controlroom.bulk_lanes_write();
DROP VIEW controlroom.bulk_lanes;
DROP VIEW controlroom.bulk_chunk_lanes;
DROP FUNCTION controlroom.bulk_flag_names(smallint);
DROP FUNCTION controlroom.bulk_unescape(text);
DROP TABLE controlroom.bulk_rating_tallies, controlroom.bulk_lane_results, controlroom.bulk_lane_chunks;
ALTER TABLE controlroom.bulk_lane_rows RENAME TO bulk_lanes;
CREATE OR REPLACE FUNCTION controlroom.bulk_jobs_delete_lanes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM controlroom.bulk_lanes WHERE job_id IN (SELECT id FROM old_jobs);
  RETURN NULL;
END $$;
CREATE VIEW controlroom.pricing_rated_lanes AS
  SELECT rated_id AS id, model_version, arm, flags, total, miles
    FROM controlroom.bulk_lanes
   WHERE rated_id IS NOT NULL;
