#!/bin/sh
# Run once by the postgres image on an empty data volume (/docker-entrypoint-initdb.d), after it
# created $POSTGRES_DB (beatframe's own database, its schema migrated by `beatframe api` at start).
# Prefect's server keeps its state in a database of its own, `prefect`: the two schemas never mix,
# and either can be backed up, restored or moved apart from the other.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
SELECT 'CREATE DATABASE prefect'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'prefect')\gexec
SQL
