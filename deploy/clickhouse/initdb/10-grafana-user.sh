#!/bin/bash
# Creates the read-only ClickHouse user that Grafana's ClickHouse data source
# logs in as (deploy/grafana/provisioning/datasources/datasources.yml).
#
# The clickhouse-server image runs the scripts in /docker-entrypoint-initdb.d
# once, on the first start with an empty data volume, against a temporary
# server that listens on 127.0.0.1 only, after it has created CLICKHOUSE_USER
# and CLICKHOUSE_DB. CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT=1 is what lets
# CLICKHOUSE_USER create users and grants. To run it again (for example after
# changing CLICKHOUSE_GRAFANA_PASSWORD), remove the volume:
# docker compose down -v.
set -euo pipefail

: "${CLICKHOUSE_GRAFANA_PASSWORD:?CLICKHOUSE_GRAFANA_PASSWORD must be set}"

# Escape the password for a single-quoted ClickHouse string literal.
password=${CLICKHOUSE_GRAFANA_PASSWORD//\\/\\\\}
password=${password//\'/\\\'}

# readonly = 2 allows reads and setting changes (the plugin's client sets
# max_execution_time on each query) but no writes or DDL; the grant limits
# the user to SELECT on correlator's database.
clickhouse client --host 127.0.0.1 \
    --user "${CLICKHOUSE_USER}" --password "${CLICKHOUSE_PASSWORD}" \
    --multiquery <<EOSQL
CREATE SETTINGS PROFILE IF NOT EXISTS grafana_readonly SETTINGS readonly = 2;
CREATE USER IF NOT EXISTS grafana IDENTIFIED WITH sha256_password BY '${password}' SETTINGS PROFILE 'grafana_readonly';
GRANT SELECT ON ${CLICKHOUSE_DB}.* TO grafana;
EOSQL
echo "$0: created read-only user 'grafana' with SELECT on ${CLICKHOUSE_DB}.*"
