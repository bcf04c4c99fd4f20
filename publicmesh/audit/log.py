"""The append-only exchange record log: records, leaf hashes, signed checkpoints and the frontier in one store."""

from __future__ import annotations

import threading
from hashlib import sha256
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from publicmesh.audit import merkle
from publicmesh.audit.checkpoint import Checkpoint
from publicmesh.audit.keys import load_audit_public_key
from publicmesh.audit.merkle import LEAF_PREFIX, CompactRange
from publicmesh.audit.records import ExchangeRecord, SubjectBatch, utc_timestamp
from publicmesh.audit.schema import (HEAD_ID, checkpoints, encode_attributes, frontier, leaves, metadata, records,
                                     row_record, subjects)
from publicmesh.audit.verify import VerificationReport, verify_log
from publicmesh.settings import Settings, get_settings
from publicmesh.storage import engine_for

DEFAULT_LOG_ID = "publicmesh-audit"
_LEAF_PAGE = 65_536


class AuditLog:
    """Appends exchange records under signed Merkle checkpoints and answers proofs about them."""

    def __init__(
        self, engine: Engine, signing_key: Ed25519PrivateKey | None, log_id: str = DEFAULT_LOG_ID
    ) -> None:
        self.engine = engine
        self.log_id = log_id
        self._signing_key = signing_key
        self._lock = threading.Lock()
        try:
            metadata.create_all(engine)
        except DBAPIError:
            metadata.create_all(engine)  # another process created the tables between our check and create
        self._ensure_head()
        if signing_key is not None:
            self._index_subjects()

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key().public_key()

    def _key(self) -> Ed25519PrivateKey:
        if self._signing_key is None:
            raise PermissionError("this audit log was opened without its signing key (read-only)")
        return self._signing_key

    def _ensure_head(self) -> None:
        with self.engine.connect() as conn:
            if conn.execute(select(frontier.c.id).where(frontier.c.id == HEAD_ID)).first() is not None:
                return
        if self._signing_key is None:
            return  # a read-only opener of an empty store has nothing to sign
        try:
            with self.engine.begin() as conn:
                conn.execute(frontier.insert(), {"id": HEAD_ID, "tree_size": 0, "hashes": b""})
                self._write_checkpoint(conn, CompactRange())
        except IntegrityError:
            pass  # another process created the head first

    def _index_subjects(self) -> None:
        """A store written before audit_subjects existed gets its pairs once, so its records stay findable."""
        with self.engine.begin() as conn:
            if (conn.execute(select(subjects.c.position).limit(1)).first() is None
                    and conn.execute(select(records.c.position).limit(1)).first() is not None):
                conn.execute(subjects.insert().from_select(["subject", "position"],
                                                           select(records.c.subject, records.c.position)))

    def _write_checkpoint(self, conn: Connection, tree: CompactRange) -> Checkpoint:
        checkpoint = Checkpoint.sign(self._key(), self.log_id, tree.size, tree.root(), utc_timestamp())
        conn.execute(
            checkpoints.insert(),
            {"tree_size": checkpoint.tree_size, "root_hash": checkpoint.root,
             "timestamp": checkpoint.timestamp, "signature": checkpoint.signature},
        )
        return checkpoint

    # -- writing ------------------------------------------------------------------------------------------

    def append(self, record: ExchangeRecord) -> int:
        """Append one record; returns its position."""
        return self.append_many([record])[0]

    def append_many(self, batch: Sequence[ExchangeRecord | SubjectBatch]) -> list[int]:
        """Append records at consecutive positions in one transaction ending in a signed checkpoint. A
        SubjectBatch (one exchange's records for many subjects) counts as its records, in order."""
        batch = list(batch)
        for item in batch:
            if not isinstance(item, (ExchangeRecord, SubjectBatch)):
                raise TypeError(f"expected ExchangeRecord, got {type(item).__name__}")
        count = sum(len(item) if isinstance(item, SubjectBatch) else 1 for item in batch)
        if not count:
            return []
        self._key()  # fail before taking the lock when the log is read-only
        with self._lock, self.engine.begin() as conn:
            # Writing the head row first takes the writers' lock before anything is read: a row lock on
            # PostgreSQL, the database write lock on SQLite (a read first could not be upgraded safely).
            locked = conn.execute(
                update(frontier).where(frontier.c.id == HEAD_ID).values(tree_size=frontier.c.tree_size)
            )
            if locked.rowcount != 1:
                raise RuntimeError("audit log head row is missing")
            head = conn.execute(select(frontier.c.tree_size, frontier.c.hashes).where(frontier.c.id == HEAD_ID)).one()
            tree = CompactRange.from_bytes(head.tree_size, bytes(head.hashes))
            start = tree.size
            _write(conn, batch, start, tree)
            conn.execute(
                update(frontier).where(frontier.c.id == HEAD_ID).values(tree_size=tree.size, hashes=tree.to_bytes())
            )
            self._write_checkpoint(conn, tree)
        return list(range(start, start + count))

    # -- reading ------------------------------------------------------------------------------------------

    def size(self) -> int:
        """Number of records in the log."""
        with self.engine.connect() as conn:
            return conn.execute(select(frontier.c.tree_size).where(frontier.c.id == HEAD_ID)).scalar() or 0

    def latest_checkpoint(self) -> Checkpoint:
        """The signed checkpoint of the current size."""
        query = select(checkpoints).order_by(checkpoints.c.tree_size.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise LookupError("the audit log has no checkpoint yet")
        return self._checkpoint(row)

    def checkpoint(self, tree_size: int) -> Checkpoint | None:
        """The signed checkpoint at exactly ``tree_size``, if one was written."""
        with self.engine.connect() as conn:
            row = conn.execute(select(checkpoints).where(checkpoints.c.tree_size == tree_size)).first()
        return self._checkpoint(row) if row is not None else None

    def _checkpoint(self, row) -> Checkpoint:
        return Checkpoint(self.log_id, row.tree_size, bytes(row.root_hash), row.timestamp, bytes(row.signature))

    def get(self, position: int) -> ExchangeRecord:
        """The record at ``position`` (KeyError when there is none)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(records).where(records.c.position == position)).mappings().first()
        if row is None:
            raise KeyError(position)
        return row_record(row)

    def records_for_subject(
        self, subject: str, limit: int = 100, before: int | None = None
    ) -> list[tuple[int, ExchangeRecord]]:
        """One subject's records, newest first; page with ``before`` = the last position seen."""
        # The pairs table finds the positions; the record must still name the subject, so a pair that points
        # at someone else's record shows nothing (verify() reports such pairs).
        query = (select(records).join(subjects, subjects.c.position == records.c.position)
                 .where(subjects.c.subject == subject, records.c.subject == subject))
        if before is not None:
            query = query.where(subjects.c.position < before)
        query = query.order_by(subjects.c.position.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [(row["position"], row_record(row)) for row in conn.execute(query).mappings()]

    # -- proofs -------------------------------------------------------------------------------------------

    def root(self, tree_size: int | None = None) -> bytes:
        """The tree root at ``tree_size`` (default: now), recomputed from the stored leaves."""
        with self.engine.connect() as conn:
            size = self._proof_size(conn, tree_size)
            return self._subtree_root(conn, 0, size)

    def inclusion_proof(self, position: int, tree_size: int | None = None) -> list[bytes]:
        """RFC 9162 inclusion proof of ``position`` in the tree of ``tree_size`` leaves (default: now)."""
        with self.engine.connect() as conn:
            size = self._proof_size(conn, tree_size)
            return merkle.inclusion_path(position, size, lambda a, b: self._subtree_root(conn, a, b))

    def inclusion_proofs(self, positions: Sequence[int], tree_size: int | None = None) -> tuple[int, dict[int, list[bytes]]]:
        """Proofs of several positions against one tree size, sharing the subtrees they have in common."""
        with self.engine.connect() as conn:
            size = self._proof_size(conn, tree_size)
            memo: dict[tuple[int, int], bytes] = {}

            def subtree(a: int, b: int) -> bytes:
                if (a, b) not in memo:
                    memo[(a, b)] = self._subtree_root(conn, a, b)
                return memo[(a, b)]

            return size, {p: merkle.inclusion_path(p, size, subtree) for p in positions if p < size}

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 consistency proof from ``old_size`` to ``new_size`` (default: now)."""
        with self.engine.connect() as conn:
            size = self._proof_size(conn, new_size)
            return merkle.consistency_path(old_size, size, lambda a, b: self._subtree_root(conn, a, b))

    def _proof_size(self, conn: Connection, tree_size: int | None) -> int:
        current = conn.execute(select(frontier.c.tree_size).where(frontier.c.id == HEAD_ID)).scalar() or 0
        if tree_size is None:
            return current
        if not 0 <= tree_size <= current:
            raise ValueError(f"tree size {tree_size} is outside the log (size {current})")
        return tree_size

    def _subtree_root(self, conn: Connection, start: int, end: int) -> bytes:
        # Streams the leaves in pages: a proof touches each leaf at most once, in O(log n) memory.
        tree = CompactRange()
        for page_start in range(start, end, _LEAF_PAGE):
            page_end = min(page_start + _LEAF_PAGE, end)
            hashes = conn.execute(
                select(leaves.c.leaf_hash)
                .where((leaves.c.position >= page_start) & (leaves.c.position < page_end))
                .order_by(leaves.c.position)
            ).scalars().all()
            if len(hashes) != page_end - page_start:
                raise LookupError(f"leaves missing in positions {page_start}..{page_end - 1}; run verify()")
            tree.extend(bytes(h) for h in hashes)
        return tree.root()

    # -- verification -------------------------------------------------------------------------------------

    def verify(self, public_key: Ed25519PublicKey | None = None) -> VerificationReport:
        """Check the whole log (streamed); ``public_key`` defaults to the signing key's."""
        return verify_log(self.engine, public_key or self.public_key, self.log_id)


def verify_store(settings: Settings | None = None, log_id: str = DEFAULT_LOG_ID) -> VerificationReport:
    """Verify the ``audit`` store with the published audit key from the keys folder."""
    settings = settings or get_settings()
    public_key = load_audit_public_key(settings.keys_dir)
    engine = engine_for("audit", settings)
    try:
        return AuditLog(engine, None, log_id).verify(public_key)
    finally:
        engine.dispose()


# Rows go to the driver, not through SQLAlchemy: its per-row parameter processing cost more than the inserts.
# Every record's (position, subject, leaf hash) is first put in a per-connection scratch table; from there the
# leaves and the subject pairs are copied by the database itself (the pairs sorted by subject, so they go into
# their table in key order), and so are the records of one exchange with many subjects: their shared fields are
# bound once instead of once per subject.
_SCRATCH = "audit_scratch"
_SHARED_FROM = 64  # an exchange with at least this many subjects has its records copied from the scratch table
_TEMPLATE = ("kind", "at", "consumer", "provider", "dataset", "attributes", "purpose", "legal_basis")


def _write(conn: Connection, batch: Sequence[ExchangeRecord | SubjectBatch], start: int, tree: CompactRange) -> None:
    """Insert the records, leaves and subject pairs of the records from position ``start`` on, their leaves
    appended to ``tree``."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    integer, binary = ("INTEGER", "BLOB") if conn.dialect.name == "sqlite" else ("BIGINT", "BYTEA")
    conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {_SCRATCH} (position {integer} PRIMARY KEY, "
                         f"subject TEXT NOT NULL, leaf_hash {binary} NOT NULL)")
    scratch_rows, record_rows, shared = [], [], []
    position = start
    for item in batch:
        group = item if isinstance(item, SubjectBatch) else SubjectBatch(item, [item.subject])
        r = group.template
        hashes = [sha256(data).digest() for data in group.canonical_leaves(position, prefix=LEAF_PREFIX)]
        tree.extend(hashes)
        end = position + len(hashes)
        scratch_rows += zip(range(position, end), group.subjects, hashes)
        before = (r.kind, r.at, r.consumer, r.provider, r.dataset, encode_attributes(r.attributes), r.purpose,
                  r.legal_basis)
        if len(hashes) >= _SHARED_FROM:
            shared.append((*before, r.request_id, r.outcome, position, end))
        else:
            record_rows += [(p, *before, subject, r.request_id, r.outcome)
                            for p, subject in zip(range(position, end), group.subjects)]
        position = end
    conn.exec_driver_sql(f"INSERT INTO {_SCRATCH} VALUES ({mark}, {mark}, {mark})", scratch_rows)
    if record_rows:
        names = [c.name for c in records.columns]
        conn.exec_driver_sql(f"INSERT INTO {records.name} ({', '.join(names)}) VALUES "
                             f"({', '.join([mark] * len(names))})", record_rows)
    for values in shared:
        conn.exec_driver_sql(
            f"INSERT INTO {records.name} (position, {', '.join(_TEMPLATE)}, subject, request_id, outcome) "
            f"SELECT position, {', '.join([mark] * len(_TEMPLATE))}, subject, {mark}, {mark} FROM {_SCRATCH} "
            f"WHERE position >= {mark} AND position < {mark} ORDER BY position", values)
    conn.exec_driver_sql(f"INSERT INTO {leaves.name} (position, leaf_hash) "
                         f"SELECT position, leaf_hash FROM {_SCRATCH} ORDER BY position")
    conn.exec_driver_sql(f"INSERT INTO {subjects.name} (subject, position) "
                         f"SELECT subject, position FROM {_SCRATCH} ORDER BY subject, position")
    conn.exec_driver_sql(f"DELETE FROM {_SCRATCH}")
