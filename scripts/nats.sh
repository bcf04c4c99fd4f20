#!/usr/bin/env bash
# Installs Debian's nats-server if missing, starts a throwaway server with JetStream on a local port, prints its URL.
# Usage: eval "$(scripts/nats.sh)"   → exports PUBLICMESH_TEST_NATS_URL
set -euo pipefail
PORT="${PUBLICMESH_NATS_PORT:-54222}"
DIR="${PUBLICMESH_NATS_DIR:-/tmp/publicmesh-nats}"
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  SUDO=()
  [ "$(id -u)" = "0" ] || SUDO=(sudo)
  ("${SUDO[@]}" apt-get update -qq && "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends nats-server >/dev/null) >&2
fi
SERVER=$(command -v nats-server || echo /usr/sbin/nats-server)
running() { [ -f "$DIR/server.pid" ] && kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null; }
if ! running; then
  rm -rf "$DIR"; mkdir -p "$DIR"
  # Detached (setsid, no inherited output) so that it outlives this script and does not hold make's pipes open.
  setsid "$SERVER" -js -sd "$DIR/jetstream" -a 127.0.0.1 -p "$PORT" -P "$DIR/server.pid" -l "$DIR/server.log" \
    </dev/null >/dev/null 2>&1 &
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && running && break
    sleep 0.1
  done
  running || { echo "nats.sh: nats-server did not start; see $DIR/server.log" >&2; exit 1; }
fi
echo "export PUBLICMESH_TEST_NATS_URL=nats://127.0.0.1:$PORT"
