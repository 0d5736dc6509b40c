-- Bulk rating jobs: the accepted lanes of one submission, rated in committed batches so a restart
-- resumes exactly where it stopped (no lane lost, none rated twice).

-- Up Migration

CREATE TABLE controlroom.bulk_jobs (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  company_id        uuid NOT NULL REFERENCES companies(id),
  submitted_by      text NOT NULL,
  idempotency_key   text,
  request_sha256    text NOT NULL,
  source            text NOT NULL CHECK (source IN ('csv', 'json')),
  filename          text,
  status            text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  lanes_total       integer NOT NULL CHECK (lanes_total > 0),
  lanes_rated       integer NOT NULL DEFAULT 0,
  lanes_failed      integer NOT NULL DEFAULT 0,
  rejected_rows     integer NOT NULL DEFAULT 0,
  rejected          jsonb NOT NULL DEFAULT '[]'::jsonb,
  agent_task_id     bigint NOT NULL,
  error             text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  finished_at       timestamptz,
  UNIQUE (company_id, idempotency_key)
);
CREATE INDEX bulk_jobs_company_created_idx ON controlroom.bulk_jobs (company_id, created_at DESC);

CREATE TABLE controlroom.bulk_lanes (
  job_id         uuid NOT NULL REFERENCES controlroom.bulk_jobs(id) ON DELETE CASCADE,
  seq            integer NOT NULL,
  line           integer NOT NULL,
  origin         text NOT NULL,
  destination    text NOT NULL,
  equipment      text NOT NULL CHECK (equipment IN ('van', 'reefer', 'flatbed')),
  pickup_date    date NOT NULL,
  status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'rated', 'failed')),
  miles          double precision,
  linehaul       numeric(12,2),
  fuel           numeric(12,2),
  total          numeric(12,2),
  per_mile       numeric(10,4),
  model_version  text,
  flags          text[],
  error          text,
  PRIMARY KEY (job_id, seq)
);
CREATE INDEX bulk_lanes_pending_idx ON controlroom.bulk_lanes (job_id, seq) WHERE status = 'pending';

-- Down Migration

DROP TABLE controlroom.bulk_lanes, controlroom.bulk_jobs;
