#!/usr/bin/env bash
# Installs Debian's PostgreSQL if missing, starts a throwaway cluster on a local port, prints its URL.
# Usage: eval "$(scripts/postgres.sh)"   → exports PUBLICMESH_TEST_DATABASE_URL
set -euo pipefail
PORT="${PUBLICMESH_PG_PORT:-55439}"
DIR="${PUBLICMESH_PG_DIR:-/tmp/publicmesh-pg}"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) >&2
fi
BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
RUNAS=()
if [ "$(id -u)" = "0" ]; then RUNAS=(runuser -u postgres --); fi
if ! "${RUNAS[@]}" "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
  rm -rf "$DIR"; mkdir -p "$DIR"
  [ "$(id -u)" = "0" ] && chown postgres:postgres "$DIR"
  "${RUNAS[@]}" "$BIN/initdb" -D "$DIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  "${RUNAS[@]}" "$BIN/pg_ctl" -D "$DIR" -o "-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" \
    -l "$DIR/server.log" -w start >/dev/null
fi
echo "export PUBLICMESH_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
