"""What one node's reads of its store share between requests, tuned by Settings (docs/performance.md)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pyarrow as pa
from sqlalchemy import Connection

from publicmesh.settings import Settings
from publicmesh.storage import columnar

JOIN_SHARE = 4  # the default of Settings.join_share


class StoreReads:
    """Owned by the node that reads (one per store): the scans of one table and tenant asked at the same moment,
    read once (columnar.TenantScans), and each dataset's tenant size as its last scan counted it, which decides
    whether a list is looked up by the key or read with a scan. Both assume a municipality's scans arrive together.

    A size is a hint, never an answer: it is replaced by the next scan of the dataset and tenant, and ``forget``
    drops it (a stale size only chooses the slower of two reads that answer the same rows)."""

    def __init__(self, gather_s: float = 0.0, join_share: int = JOIN_SHARE):
        self.scans = columnar.TenantScans(gather_s)
        self.join_share = join_share
        self._sizes: dict[tuple[str, str], int] = {}  # (dataset, tenant) → rows its last scan read
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> StoreReads:
        return cls(settings.scan_gather_s, settings.join_share)

    def joins(self, dataset: str, tenant: str, asked: int) -> bool:
        """Whether ``asked`` subjects are a small enough share of the tenant (as its last scan counted it) to be
        looked up by the key rather than read with a scan; never before a first scan."""
        with self._lock:
            return asked * self.join_share < self._sizes.get((dataset, tenant), 0)

    def scanned(self, dataset: str, tenant: str, rows: int) -> None:
        """A scan of the dataset's rows of the tenant read ``rows``."""
        with self._lock:
            self._sizes[(dataset, tenant)] = rows

    def forget(self, tenant: str | None = None) -> None:
        """Drop the sizes of one tenant (every tenant, with None): its next list is read as before its first scan."""
        with self._lock:
            for key in [k for k in self._sizes if tenant is None or k[1] == tenant]:
                del self._sizes[key]

    def tenant_rows(
        self, conn: Connection, source, tenant_column: str, tenant: str, columns: Sequence[str]
    ) -> pa.Table:
        """The columns of the tenant's rows of ``source`` (a SQLAlchemy table), read with the other scans of the same
        table and tenant asked at the same moment."""
        return self.scans.read(conn, source, tenant_column, tenant, columns)
