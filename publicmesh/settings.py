"""One settings object, read from the environment, with embedded defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(f"PUBLICMESH_{name}", default)


HUB_PORT_OFFSET = 1


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(_env("DATA_DIR", "data")).resolve())
    # Empty means SQLite files under data_dir; a PostgreSQL URL means one database per store on it.
    database_url: str = field(default_factory=lambda: _env("DATABASE_URL", ""))
    # Where the hub routes events: empty means the embedded transport (a store of its own, on database_url's
    # backend); a nats:// URL means a NATS JetStream server, in the stream events_stream (created if missing).
    events_url: str = field(default_factory=lambda: _env("EVENTS_URL", ""))
    events_stream: str = field(default_factory=lambda: _env("EVENTS_STREAM", "PUBLICMESH_EVENTS"))
    # Seconds the stream remembers an event id, so that a republish is dropped (docs/performance.md).
    events_duplicate_window_s: float = field(default_factory=lambda: float(_env("EVENTS_DUPLICATE_WINDOW", "3600")))
    host: str = field(default_factory=lambda: _env("HOST", "127.0.0.1"))
    base_port: int = field(default_factory=lambda: int(_env("BASE_PORT", "8700")))
    provider_timeout_s: float = field(default_factory=lambda: float(_env("PROVIDER_TIMEOUT", "2.0")))
    signature_max_age_s: int = field(default_factory=lambda: int(_env("SIGNATURE_MAX_AGE", "30")))
    max_body_bytes: int = field(default_factory=lambda: int(_env("MAX_BODY_BYTES", str(1 << 20))))
    seed: int = field(default_factory=lambda: int(_env("SEED", "20261123")))
    residents: int = field(default_factory=lambda: int(_env("RESIDENTS", "20000")))
    # Tuning of the caches that assume a municipality's scans arrive together (docs/performance.md).
    # The hub keeps a scan's conversion, its answer order and its audit subject tree for the next scan of the same
    # residents when it names more than this many pseudonyms.
    hub_keeps_over: int = field(default_factory=lambda: int(_env("HUB_KEEPS_OVER", "100000")))
    # A node's scan of a tenant's rows waits this long for the other scans of the same table and tenant, and reads
    # the rows once for all of them (0: no waiting, each scan reads alone).
    scan_gather_s: float = field(default_factory=lambda: float(_env("SCAN_GATHER", "0.03")))
    # A node looks a list up by the key (joined) instead of scanning the tenant when the list is shorter than
    # 1/JOIN_SHARE of the tenant's rows as its last scan counted them.
    join_share: int = field(default_factory=lambda: int(_env("JOIN_SHARE", "4")))
    # Seconds a publisher worker holds a municipality's job without renewing it: a worker that died is replaced
    # by another after this long (PUBLICMESH_PUBLISH_LEASE).
    publish_lease_s: float = field(default_factory=lambda: float(_env("PUBLISH_LEASE", "60")))
    # Processes of the hub and of the portal (PUBLICMESH_REPLICAS): more than one runs that many of each behind
    # HAProxy on the part's own port (runtime/proxy.py); one is the embedded default, no proxy.
    replicas: int = field(default_factory=lambda: int(_env("REPLICAS", "1")))
    # How often the hub sends its latest audit checkpoint to the witnesses (seconds; checkpoints in between are
    # covered by the next one's consistency proof).
    witness_interval_s: float = field(default_factory=lambda: float(_env("WITNESS_INTERVAL", "1.0")))
    # The municipalities this mesh serves (6-digit codes, comma-separated); empty means the demo ones.
    municipalities: tuple[str, ...] = field(
        default_factory=lambda: tuple(c.strip() for c in _env("MUNICIPALITIES", "").split(",") if c.strip())
    )
    # What the stores' database names (and SQLite files) start with: two meshes can share one PostgreSQL cluster under
    # two prefixes (tests that back one up and restore it beside the shared test mesh).
    database_prefix: str = field(default_factory=lambda: _env("DATABASE_PREFIX", "publicmesh"))

    @property
    def hub_url(self) -> str:
        """Where the members reach the hub (the hub listens on the port after the base port)."""
        return f"http://{self.host}:{self.base_port + HUB_PORT_OFFSET}"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
