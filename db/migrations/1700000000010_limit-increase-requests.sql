-- "Request increase": a tenant refused at a hard limit asks ops for more. Each request creates one
-- `notify_ops` agent task (type limit_increase_request). The unique key makes a repeated request (a
-- double click, a retry after a lost response) for the same company, feature, limit and period find the
-- first one instead of asking ops twice.

-- Up Migration

CREATE TABLE controlroom.limit_increase_requests (
  id               bigserial PRIMARY KEY,
  company_id       uuid NOT NULL REFERENCES companies(id),
  feature          text NOT NULL REFERENCES features(key),
  period_start     date NOT NULL,
  current_limit    bigint NOT NULL,
  requested_limit  bigint NOT NULL CHECK (requested_limit > 0),
  reason           text NOT NULL,
  requested_by     text NOT NULL,
  agent_task_id    bigint NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (company_id, feature, period_start, requested_limit)
);
CREATE INDEX limit_increase_requests_company_idx ON controlroom.limit_increase_requests (company_id, created_at DESC);

-- Down Migration

DROP TABLE controlroom.limit_increase_requests;
