#!/bin/sh
# Postgres runs the files of /docker-entrypoint-initdb.d once, when the data volume is first created.
# Grafana's Postgres data source connects as grafana_reader: it may read every table and view the schema
# owner (controlroom) creates, now or later by migration, and change none. A dashboard query or a user with
# Explore can then not write, drop or lock anything, whatever SQL they type.
set -eu
: "${TMS_DB_READER_PASSWORD:?set TMS_DB_READER_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v reader_password="$TMS_DB_READER_PASSWORD" -v DBNAME="$POSTGRES_DB" -v owner="$POSTGRES_USER" <<'SQL'
CREATE ROLE grafana_reader LOGIN PASSWORD :'reader_password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
ALTER ROLE grafana_reader SET default_transaction_read_only = on;
ALTER ROLE grafana_reader SET statement_timeout = '30s';
-- The migrations run as the owner with search_path "$user", public, so the TMS tables land in the owner's
-- schema: the reader resolves unqualified names (the dashboards' SQL) the same way.
ALTER ROLE grafana_reader SET search_path = :"owner", public;
GRANT CONNECT ON DATABASE :"DBNAME" TO grafana_reader;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO grafana_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO grafana_reader;
-- Tables, views and schemas the owner creates later (the migrations run after this script).
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" GRANT SELECT ON TABLES TO grafana_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" GRANT USAGE ON SCHEMAS TO grafana_reader;
SQL
