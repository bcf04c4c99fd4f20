"""HAProxy in front of the hub's and the portal's replicas (settings.replicas > 1), on the parts' own ports.

A replica that stops answering its health check every half second is out after two misses (about a second); a
request whose connection to a dead replica fails is sent to another (``retry-on conn-failure``: a request never
sent cannot have been acted on, so this is safe for any method). Nothing else is retried by the proxy: a request a
replica received and then died on is the client's to retry if it is idempotent (a signed query is; a submission
is idempotent at the services part).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from publicmesh.runtime.topology import REPLICATED, parts, processes, replica_of
from publicmesh.settings import Settings
from publicmesh.storage.private import write_private

HAPROXY = "haproxy"  # Debian's package (scripts/haproxy.sh installs it)


def config(settings: Settings) -> str:
    """haproxy.cfg: a frontend on each replicated part's port, its replicas as the backend's servers."""
    public = {p.name: p.port for p in parts(settings)}
    lines = [
        "global",
        "    maxconn 4000",  # within the default open-file limit (two descriptors a connection)
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 15m",  # a publish's calls through the hub may take minutes (MeshClient.timeout_s)
        "    timeout server 15m",
        "    timeout http-keep-alive 75s",
        "    option redispatch",
        "    retries 3",
        "    retry-on conn-failure",
        "    http-reuse safe",
        "    default-server inter 500ms fastinter 250ms fall 2 rise 1",
    ]
    for name in REPLICATED:
        lines += [
            f"frontend {name}",
            f"    bind {settings.host}:{public[name]}",
            f"    default_backend {name}s",
            f"backend {name}s",
            "    balance leastconn",
            "    option httpchk GET /healthz",
        ]
        lines += [
            f"    server {p.name} {settings.host}:{p.port} check"
            for p in processes(settings)
            if replica_of(p.name) == name and p.name != name
        ]
    return "\n".join(lines) + "\n"


def command(settings: Settings) -> list[str]:
    """The proxy's command line, its configuration written first (in the data folder, owner-only)."""
    path = Path(settings.data_dir) / "haproxy.cfg"
    write_private(path, config(settings).encode())
    binary = shutil.which(HAPROXY) or f"/usr/sbin/{HAPROXY}"
    return [binary, "-f", str(path), "-db"]  # -db: in the foreground, as a supervised part
