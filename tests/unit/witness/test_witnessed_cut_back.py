"""A log cut back below a checkpoint a witness cosigned fails ``publicmesh audit verify``; the same log uncut passes.
The witnessed checkpoint comes from the witness (here its store: the witness is down), never from the hub's store."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import httpx
import pytest
from sqlalchemy import delete, update
from test_witness_cosigning import record

from publicmesh.audit import AuditLog, Checkpoint, CompactRange, load_or_create_audit_key, merkle
from publicmesh.audit.log import DEFAULT_LOG_ID
from publicmesh.audit.proofs import PerfectSubtrees
from publicmesh.audit.schema import HEAD_ID, checkpoints, frontier, leaves, records, subjects
from publicmesh.hub.witnessing import Witnesses
from publicmesh.settings import Settings
from publicmesh.storage import engine_for
from publicmesh.witness.bootstrap import bootstrap


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def verify(settings: Settings) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PUBLICMESH_DATA_DIR": str(settings.data_dir),
        "PUBLICMESH_DATABASE_URL": "",
        "PUBLICMESH_BASE_PORT": str(settings.base_port),
    }
    return subprocess.run(
        [sys.executable, "-m", "publicmesh.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def cut_back(log: AuditLog, size: int) -> None:
    """What a hub operator hiding records would do: drop everything from ``size`` on and rewind the head, so that
    the log alone is consistent again."""
    with log.engine.begin() as conn:
        for table in (records, leaves, subjects):
            conn.execute(delete(table).where(table.c.position >= size))
        conn.execute(delete(checkpoints).where(checkpoints.c.tree_size > size))
        kept = conn.execute(leaves.select().order_by(leaves.c.position)).all()
        tree = CompactRange()
        tree.extend([bytes(row.leaf_hash) for row in kept])
        conn.execute(update(frontier).where(frontier.c.id == HEAD_ID).values(tree_size=size, hashes=tree.to_bytes()))


@pytest.fixture
def witnessed_log(tmp_path):
    # The witness's port is one nothing listens on: verify reads the witnessed checkpoint from the witness's store.
    settings = Settings(data_dir=tmp_path, base_port=unused_port() - 4)
    log = AuditLog(engine_for("audit", settings), load_or_create_audit_key(settings.keys_dir))
    app = bootstrap(settings)

    async def witness_at(sizes: range) -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
            witnesses = Witnesses(log, ["http://witness"])
            for i in sizes:
                log.append(record(i))
            assert await witnesses.submit_latest(client) == 1

    asyncio.run(witness_at(range(0, 10)))
    asyncio.run(witness_at(range(10, 20)))  # cosigned at 20
    for i in range(20, 25):  # not witnessed yet
        log.append(record(i))
    return settings, log


def test_a_log_cut_back_below_a_witnessed_checkpoint_fails_verify(witnessed_log):
    settings, log = witnessed_log
    uncut = verify(settings)
    assert uncut.returncode == 0, uncut.stdout + uncut.stderr
    assert "cosigned size 20" in " ".join(uncut.stdout.split())

    cut_back(log, 23)  # above the witnessed size: only unwitnessed records are gone, which a witness cannot see
    assert log.verify().ok
    assert verify(settings).returncode == 0

    cut_back(log, 15)  # below it: the log alone still verifies, the witness's checkpoint does not
    assert log.verify().ok
    failed = verify(settings)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    said = " ".join(failed.stdout.split())  # as the terminal wrapped it
    assert "cut-back" in said and "cosigned a checkpoint at size 20: the log was cut back" in said


def test_a_log_rewritten_under_a_witnessed_checkpoint_fails_verify(tmp_path):
    settings = Settings(data_dir=tmp_path)
    key = load_or_create_audit_key(settings.keys_dir)
    log = AuditLog(engine_for("audit", settings), key)
    log.append_many([record(i) for i in range(12)])
    witnessed = log.latest_checkpoint()
    assert log.verify(witnessed=[witnessed]).ok
    # Another tree of the same size, signed by the same key: what a rewritten log's checkpoints would say.
    forged = Checkpoint.sign(key, DEFAULT_LOG_ID, 12, merkle.leaf_hash(b"other"), witnessed.timestamp)
    report = log.verify(witnessed=[forged])
    assert [p.kind for p in report.problems] == ["witness-fork"]
    signed_elsewhere = Checkpoint.sign(
        load_or_create_audit_key(tmp_path / "other"), DEFAULT_LOG_ID, 12, witnessed.root, "t"
    )
    assert [p.kind for p in log.verify(witnessed=[signed_elsewhere]).problems] == ["witness-unverifiable"]


def test_consistency_proofs_from_kept_subtrees_are_the_same(tmp_path):
    log = AuditLog(engine_for("audit", Settings(data_dir=tmp_path)), load_or_create_audit_key(tmp_path / "keys"))
    log.append_many([record(i) for i in range(3000)])
    log.proofs.subtrees = PerfectSubtrees(minimum=64)
    for old, new in ((1, 3000), (700, 2049), (1024, 3000), (2999, 3000), (5, 5)):
        proof = log.consistency_proof(old, new)
        assert proof == log.consistency_proof(old, new)  # the second from kept subtrees
        assert merkle.verify_consistency(old, new, log.root(old), log.root(new), proof)
