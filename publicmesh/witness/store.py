"""The witness's own store: the latest checkpoint it cosigned of each log, and every one it ever cosigned."""

from __future__ import annotations

import threading

from sqlalchemy import BigInteger, Column, Engine, Integer, LargeBinary, MetaData, Table, Text, select, update

from publicmesh.audit.checkpoint import Checkpoint
from publicmesh.audit.cosignature import Cosignature
from publicmesh.storage.engines import schema_once

metadata = MetaData()
_Size = BigInteger().with_variant(Integer(), "sqlite")


def _checkpoint_columns() -> list[Column]:
    return [
        Column("tree_size", _Size, nullable=False),
        Column("root_hash", LargeBinary, nullable=False),
        Column("timestamp", Text, nullable=False),
        Column("signature", LargeBinary, nullable=False),
        Column("cosigned_at", BigInteger, nullable=False),
        Column("cosignature", LargeBinary, nullable=False),
    ]


# One row per log: what the next checkpoint must be consistent with.
heads = Table("witness_heads", metadata, Column("log_id", Text, primary_key=True), *_checkpoint_columns())
# Every checkpoint cosigned, kept for whoever asks later what was witnessed when.
history = Table(
    "witness_history",
    metadata,
    Column("log_id", Text, primary_key=True),
    Column("seq", _Size, primary_key=True, autoincrement=False),
    *_checkpoint_columns(),
)
ensure_schema = schema_once(metadata)


class WitnessStore:
    """Reads and advances the witness's heads; an advance commits only from the head it was checked against."""

    def __init__(self, engine: Engine, witness: str) -> None:
        self.engine = ensure_schema(engine)
        self.witness = witness
        self._lock = threading.Lock()

    def latest(self, log_id: str) -> tuple[Checkpoint, Cosignature] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(heads).where(heads.c.log_id == log_id)).first()
        if row is None:
            return None
        checkpoint = Checkpoint(log_id, row.tree_size, bytes(row.root_hash), row.timestamp, bytes(row.signature))
        return checkpoint, Cosignature(self.witness, row.cosigned_at, bytes(row.cosignature))

    def advance(self, old_size: int | None, checkpoint: Checkpoint, cosignature: Cosignature) -> bool:
        """Make ``checkpoint`` the log's head if the head is still at ``old_size`` (None: the log has none yet);
        False when another submission moved it first."""
        row = {
            "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root,
            "timestamp": checkpoint.timestamp,
            "signature": checkpoint.signature,
            "cosigned_at": cosignature.cosigned_at,
            "cosignature": cosignature.signature,
        }
        with self._lock, self.engine.begin() as conn:
            if old_size is None:
                if conn.execute(select(heads.c.log_id).where(heads.c.log_id == checkpoint.log_id)).first():
                    return False
                conn.execute(heads.insert(), {"log_id": checkpoint.log_id, **row})
            else:
                moved = conn.execute(
                    update(heads)
                    .where((heads.c.log_id == checkpoint.log_id) & (heads.c.tree_size == old_size))
                    .values(**row)
                )
                if moved.rowcount != 1:
                    return False
            seq = conn.execute(
                select(history.c.seq)
                .where(history.c.log_id == checkpoint.log_id)
                .order_by(history.c.seq.desc())
                .limit(1)
            ).scalar()
            conn.execute(history.insert(), {"log_id": checkpoint.log_id, "seq": (seq or 0) + 1, **row})
        return True
