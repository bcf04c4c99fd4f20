"""The append-only exchange record log: records, leaf hashes, signed checkpoints and the frontier in one store."""

from __future__ import annotations

import bisect
import threading
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from hashlib import sha256

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from publicmesh.audit.checkpoint import Checkpoint
from publicmesh.audit.cosignature import Cosignature
from publicmesh.audit.keys import load_audit_public_key
from publicmesh.audit.merkle import LEAF_PREFIX, CompactRange
from publicmesh.audit.proofs import LogProofs
from publicmesh.audit.records import ExchangeRecord, SubjectBatch, batch_canonical_bytes, canonical_bytes, utc_timestamp
from publicmesh.audit.schema import (
    HEAD_ID,
    batches,
    checkpoints,
    cosignatures,
    encode_attributes,
    frontier,
    leaves,
    metadata,
    pages_of,
    records,
    row_record,
    subject_pages,
    subjects,
    upgrade,
)
from publicmesh.audit.subjects import KeptTrees, SubjectProof, SubjectTree, page_subjects, prove
from publicmesh.audit.verify import VerificationReport, verify_log
from publicmesh.settings import Settings, get_settings
from publicmesh.storage import engine_for, insert_tuples

DEFAULT_LOG_ID = "publicmesh-audit"


@dataclass(frozen=True)
class SubjectBatchInfo:
    """What a person needs to check a record about many subjects: the shared record, the subject tree's count and
    root (which the leaf carries), and the proof that the tree names them."""

    template: ExchangeRecord
    count: int
    root: bytes
    proof: SubjectProof | None


@dataclass(frozen=True)
class SubjectEntry:
    """One of a person's records: its position, the record as they see it, and for an exchange about many
    subjects what proves they are one of them."""

    position: int
    record: ExchangeRecord
    batch: SubjectBatchInfo | None = None

    def leaf(self) -> bytes:
        """The leaf data the log hashed for this position."""
        if self.batch is None:
            return canonical_bytes(self.record, self.position)
        return batch_canonical_bytes(self.batch.template, self.position, self.batch.count, self.batch.root)


class AuditLog:
    """Appends exchange records under signed Merkle checkpoints and answers proofs about them."""

    def __init__(
        self,
        engine: Engine,
        signing_key: Ed25519PrivateKey | None,
        log_id: str = DEFAULT_LOG_ID,
        *,
        keeps_trees_over: int | None = None,
    ) -> None:
        """``keeps_trees_over``: a scan's subject tree of more subjects than this is kept for the next record of the
        same subjects (Settings.hub_keeps_over; None: none kept)."""
        self.engine = engine
        self.log_id = log_id
        self._signing_key = signing_key
        self._lock = threading.Lock()
        try:
            metadata.create_all(engine)
        except DBAPIError:
            metadata.create_all(engine)  # another process created the tables between our check and create
        upgrade(engine)
        # Trees whose pages were written, and where: weakly, so a tree no longer used is not kept for this.
        self._trees: deque[tuple[weakref.ref, int]] = deque(maxlen=8)
        self.kept_trees = None if keeps_trees_over is None else KeptTrees(keeps_trees_over)
        self.proofs = LogProofs(engine)
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
            if (
                conn.execute(select(subjects.c.position).limit(1)).first() is None
                and conn.execute(select(records.c.position).limit(1)).first() is not None
            ):
                conn.execute(
                    subjects.insert().from_select(
                        ["subject", "position"],
                        select(records.c.subject, records.c.position).where(
                            ~records.c.position.in_(select(batches.c.position))
                        ),
                    )
                )

    def _write_checkpoint(self, conn: Connection, tree: CompactRange) -> Checkpoint:
        checkpoint = Checkpoint.sign(self._key(), self.log_id, tree.size, tree.root(), utc_timestamp())
        conn.execute(
            checkpoints.insert(),
            {
                "tree_size": checkpoint.tree_size,
                "root_hash": checkpoint.root,
                "timestamp": checkpoint.timestamp,
                "signature": checkpoint.signature,
            },
        )
        return checkpoint

    # -- writing ------------------------------------------------------------------------------------------

    def append(self, record: ExchangeRecord) -> int:
        """Append one record; returns its position."""
        return self.append_many([record])[0]

    def append_many(self, batch: Sequence[ExchangeRecord | SubjectBatch]) -> list[int]:
        """Append records at consecutive positions in one transaction ending in a signed checkpoint; a SubjectBatch
        (one exchange about many subjects) is one record, at one position."""
        batch = list(batch)
        for item in batch:
            if not isinstance(item, (ExchangeRecord, SubjectBatch)):
                raise TypeError(f"expected ExchangeRecord, got {type(item).__name__}")
            if isinstance(item, SubjectBatch) and not len(item):
                raise ValueError("an exchange record about many subjects names at least one")
        count = len(batch)
        if not count:
            return []
        for item in batch:  # subject trees are built before the writers' lock is taken
            if isinstance(item, SubjectBatch):
                item.build_tree(self.kept_trees)
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
            written = _write(conn, batch, start, tree, self._trees)
            conn.execute(
                update(frontier).where(frontier.c.id == HEAD_ID).values(tree_size=tree.size, hashes=tree.to_bytes())
            )
            self._write_checkpoint(conn, tree)
        # Committed: a later record about the same subjects may name these pages.
        self._trees.extend((weakref.ref(tree), at) for tree, at in written)
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
        """The record at ``position`` (KeyError when there is none); one about many subjects has subject ''."""
        with self.engine.connect() as conn:
            row = conn.execute(select(records).where(records.c.position == position)).mappings().first()
        if row is None:
            raise KeyError(position)
        return row_record(row)

    def records_for_subject(
        self, subject: str, limit: int = 100, before: int | None = None
    ) -> list[tuple[int, ExchangeRecord]]:
        """One subject's records, newest first; page with ``before`` = the last position seen."""
        return [(e.position, e.record) for e in self.entries_for_subject(subject, limit, before)]

    def entries_for_subject(self, subject: str, limit: int = 100, before: int | None = None) -> list[SubjectEntry]:
        """One subject's records, newest first, each about them alone or, for an exchange about many, with the proof
        that its subject tree names them."""
        # The pairs table finds the positions; the record must still name the subject, so a pair that points
        # at someone else's record shows nothing (verify() reports such pairs).
        query = (
            select(records)
            .join(subjects, subjects.c.position == records.c.position)
            .where(subjects.c.subject == subject, records.c.subject == subject)
        )
        if before is not None:
            query = query.where(subjects.c.position < before)
        query = query.order_by(subjects.c.position.desc()).limit(limit)
        with self.engine.connect() as conn:
            found = [SubjectEntry(row["position"], row_record(row)) for row in conn.execute(query).mappings()]
            found += self._batch_entries(conn, subject, limit, before)
        return sorted(found, key=lambda e: -e.position)[:limit]

    def _batch_entries(self, conn: Connection, subject: str, limit: int, before: int | None) -> list[SubjectEntry]:
        """The exchanges about many subjects that name ``subject``: in each, the page that would hold it is sought
        (newest first), and the subject looked up in it."""
        page = subject_pages.alias("page")
        seek = (
            select(func.max(page.c.first_subject))
            .where(page.c.position == pages_of(), page.c.first_subject <= subject)
            .scalar_subquery()
        )
        query = (
            select(
                batches.c.position,
                batches.c.subject_count,
                batches.c.subject_root,
                subject_pages.c.page,
                subject_pages.c.subjects,
                pages_of().label("pages_at"),
            )
            .select_from(batches)
            .join(subject_pages, (subject_pages.c.position == pages_of()) & (subject_pages.c.first_subject == seek))
            .order_by(batches.c.position.desc())
        )
        if before is not None:
            query = query.where(batches.c.position < before)
        found = []
        for row in conn.execute(query):
            try:
                listed = page_subjects(row.subjects)
            except ValueError:
                continue  # an unreadable page shows nothing; verify() reports it
            at = bisect.bisect_left(listed, subject)
            if at < len(listed) and listed[at] == subject:
                found.append((row, listed))
                if len(found) == limit:
                    break
        entries = []
        for row, listed in found:
            stored = conn.execute(select(records).where(records.c.position == row.position)).mappings().first()
            if stored is None:
                continue
            roots = [
                bytes(r)
                for r in conn.execute(
                    select(subject_pages.c.page_root)
                    .where(subject_pages.c.position == row.pages_at)
                    .order_by(subject_pages.c.page)
                ).scalars()
            ]
            proof = prove(subject, row.page, listed, roots, row.subject_count)
            template = row_record(stored)
            entries.append(
                SubjectEntry(
                    row.position,
                    replace(template, subject=subject),
                    SubjectBatchInfo(template, row.subject_count, bytes(row.subject_root), proof),
                )
            )
        return entries

    # -- proofs -------------------------------------------------------------------------------------------

    def root(self, tree_size: int | None = None) -> bytes:
        """The tree root at ``tree_size`` (default: now), recomputed from the stored leaves."""
        return self.proofs.root(tree_size)

    def inclusion_proof(self, position: int, tree_size: int | None = None) -> list[bytes]:
        """RFC 9162 inclusion proof of ``position`` in the tree of ``tree_size`` leaves (default: now)."""
        return self.proofs.inclusion_proof(position, tree_size)

    def inclusion_proofs(
        self, positions: Sequence[int], tree_size: int | None = None
    ) -> tuple[int, dict[int, list[bytes]]]:
        """Proofs of several positions against one tree size, sharing the subtrees they have in common."""
        return self.proofs.inclusion_proofs(positions, tree_size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 consistency proof from ``old_size`` to ``new_size`` (default: now)."""
        return self.proofs.consistency_proof(old_size, new_size)

    # -- witnesses ----------------------------------------------------------------------------------------

    def add_cosignature(self, tree_size: int, cosignature: Cosignature) -> None:
        """Keep a witness's cosignature of the checkpoint at ``tree_size`` (a second one of the same witness and
        size replaces the first)."""
        row = {
            "tree_size": tree_size,
            "witness": cosignature.witness,
            "cosigned_at": cosignature.cosigned_at,
            "signature": cosignature.signature,
        }
        with self.engine.begin() as conn:
            conn.execute(
                cosignatures.delete().where(
                    (cosignatures.c.tree_size == tree_size) & (cosignatures.c.witness == cosignature.witness)
                )
            )
            conn.execute(cosignatures.insert(), row)

    def latest_witnessed(self) -> tuple[Checkpoint, list[Cosignature]] | None:
        """The largest checkpoint some witness cosigned, with its cosignatures (None before the first)."""
        with self.engine.connect() as conn:
            size = conn.execute(select(func.max(cosignatures.c.tree_size))).scalar()
            if size is None:
                return None
            row = conn.execute(select(checkpoints).where(checkpoints.c.tree_size == size)).first()
            signed = conn.execute(
                select(cosignatures).where(cosignatures.c.tree_size == size).order_by(cosignatures.c.witness)
            ).all()
        if row is None:
            return None
        return self._checkpoint(row), [Cosignature(r.witness, r.cosigned_at, bytes(r.signature)) for r in signed]

    # -- verification -------------------------------------------------------------------------------------

    def verify(
        self, public_key: Ed25519PublicKey | None = None, witnessed: Sequence[Checkpoint] = ()
    ) -> VerificationReport:
        """Check the whole log (streamed); ``public_key`` defaults to the signing key's; the log must still hold the
        checkpoints witnesses cosigned (``witnessed``)."""
        return verify_log(self.engine, public_key or self.public_key, self.log_id, witnessed=witnessed)


def verify_store(
    settings: Settings | None = None, log_id: str = DEFAULT_LOG_ID, witnessed: Sequence[Checkpoint] = ()
) -> VerificationReport:
    """Verify the ``audit`` store with the published audit key from the keys folder, and against the checkpoints
    witnesses cosigned (``witnessed``, from the witnesses themselves)."""
    settings = settings or get_settings()
    public_key = load_audit_public_key(settings.keys_dir)
    engine = engine_for("audit", settings)
    try:
        return AuditLog(engine, None, log_id).verify(public_key, witnessed)
    finally:
        engine.dispose()


# Rows go to the driver, not through SQLAlchemy: its per-row parameter processing cost more than the inserts.
def _write(
    conn: Connection,
    batch: Sequence[ExchangeRecord | SubjectBatch],
    start: int,
    tree: CompactRange,
    trees: Sequence[tuple[weakref.ref, int]] = (),
) -> list[tuple[SubjectTree, int]]:
    """Insert the records, leaves, subject pairs and subject pages of the records from position ``start`` on,
    their leaves appended to ``tree``. A subject tree already written (``trees``: tree and position, or earlier in
    this batch) is named, not written again. Returns the trees whose pages it wrote, and where."""
    record_rows, leaf_rows, pairs, batch_rows, page_rows = [], [], [], [], []
    written: list[tuple[SubjectTree, int]] = []
    for position, item in enumerate(batch, start):
        r = item.template if isinstance(item, SubjectBatch) else item
        if isinstance(item, SubjectBatch):
            data, subject = item.canonical_bytes(position), ""
            holder = next((at for known, at in trees if known() is item.tree), None)
            holder = next((at for known, at in written if known is item.tree), holder)
            batch_rows.append((position, item.tree.count, item.tree.root, holder))
            if holder is None:
                page_rows += [
                    (position, p.first, p.number, p.subjects_json.decode("utf-8"), p.root) for p in item.tree.pages
                ]
                written.append((item.tree, position))
        else:
            data, subject = canonical_bytes(item, position), item.subject
            pairs.append((subject, position))
        record_rows.append(
            (
                position,
                r.kind,
                r.at,
                r.consumer,
                r.provider,
                r.dataset,
                encode_attributes(r.attributes),
                r.purpose,
                r.legal_basis,
                subject,
                r.request_id,
                r.outcome,
            )
        )
        leaf_rows.append((position, sha256(LEAF_PREFIX + data).digest()))
    tree.extend([h for _, h in leaf_rows])
    for table, rows in (
        (records, record_rows),
        (leaves, leaf_rows),
        (subjects, pairs),
        (batches, batch_rows),
        (subject_pages, page_rows),
    ):
        if rows:
            insert_tuples(conn, table, rows)
    return written
