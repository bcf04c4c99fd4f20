"""Signature nonces kept in a store for their validity window, so a replay is refused across restarts too."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from sqlalchemy import BigInteger, Column, Engine, Index, MetaData, String, Table, delete, select, tuple_

metadata = MetaData()

nonces = Table(
    "signature_nonces",
    metadata,
    Column("key_id", String, primary_key=True),
    Column("nonce", String, primary_key=True),
    Column("expires_at", BigInteger, nullable=False),  # seconds since the epoch
    Index("ix_signature_nonces_expires_at", "expires_at"),
)

PURGE_BATCH = 5000


class SqlNonceStore:
    """Nonces in a table keyed by (key, nonce): inserting one already there and unexpired is a replay.

    A nonce is kept until its signature could no longer be accepted (created + window + 1 s of clock slack)."""

    def __init__(self, engine: Engine, window_s: int, clock: Callable[[], float] = time.time):
        self.engine, self.window, self.clock = engine, window_s, clock
        metadata.create_all(engine)
        self._next_purge = 0.0

    def seen_once(self, key_id: str, nonce: str, created: int) -> bool:
        """True the first time (key_id, nonce) is seen within its window, False for a replay."""
        return self.seen_many([(key_id, nonce, created)])[0]

    def seen_many(self, items: Sequence[tuple[str, str, int]]) -> list[bool]:
        """seen_once for each item, in one transaction; an item repeated within ``items`` is a replay after the first."""
        if not items:
            return []
        now = int(self.clock())
        first: dict[tuple[str, str], int] = {}
        for key_id, nonce, created in items:
            first.setdefault((key_id, nonce), created)
        rows = [(k, n, max(created, now) + self.window + 1) for (k, n), created in first.items()]
        with self.engine.begin() as conn:
            # Written as driver SQL: a SQLAlchemy statement of as many rows as the batch would be compiled anew for
            # each batch size, which cost the hot path more than the insert itself.
            mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            values = ", ".join([f"({mark}, {mark}, {mark})"] * len(rows))
            # An expired row not purged yet gives way: its signature could not be accepted any more.
            sql = (
                f"INSERT INTO {nonces.name} (key_id, nonce, expires_at) VALUES {values} "
                f"ON CONFLICT (key_id, nonce) DO UPDATE SET expires_at = excluded.expires_at "
                f"WHERE {nonces.name}.expires_at <= {mark} RETURNING key_id, nonce"
            )
            params = tuple(v for row in rows for v in row) + (now,)
            stored = {(k, n) for k, n in conn.exec_driver_sql(sql, params)}
        if now >= self._next_purge:
            self._next_purge = now + self.window
            self.purge()
        answers, taken = [], set()
        for key_id, nonce, _ in items:
            key = (key_id, nonce)
            answers.append(key in stored and key not in taken)
            taken.add(key)
        return answers

    def purge(self, batch: int = PURGE_BATCH) -> int:
        """Deletes expired nonces, ``batch`` rows per transaction (no long lock on a busy table); how many."""
        removed = 0
        while True:
            now = int(self.clock())
            expired = select(nonces.c.key_id, nonces.c.nonce).where(nonces.c.expires_at <= now).limit(batch)
            with self.engine.begin() as conn:
                count = conn.execute(
                    delete(nonces).where(tuple_(nonces.c.key_id, nonces.c.nonce).in_(expired))
                ).rowcount
            removed += count
            if count < batch:
                return removed
