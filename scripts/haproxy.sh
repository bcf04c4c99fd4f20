#!/usr/bin/env bash
# Installs Debian's HAProxy if missing (the proxy in front of the hub's and the portal's replicas when
# PUBLICMESH_REPLICAS > 1). The supervisor starts it; nothing runs here.
set -euo pipefail
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null) >&2
  # Debian starts its own haproxy service on install: ours is started by the supervisor with its own config.
  (systemctl stop haproxy 2>/dev/null || service haproxy stop 2>/dev/null || pkill -x haproxy || true) >/dev/null 2>&1
fi
