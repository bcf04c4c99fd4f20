"""The witness cosigns a checkpoint only when the log signed it and it extends the last one cosigned; the hub's
submitter proves from the size the witness holds and keeps the cosignatures."""

from __future__ import annotations

import asyncio
import base64
import os
import stat

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from publicmesh.audit import AuditLog, Checkpoint, Cosignature, ExchangeRecord, load_or_create_audit_key
from publicmesh.audit.keys import load_witness_public_key
from publicmesh.audit.log import DEFAULT_LOG_ID
from publicmesh.hub.witnessing import Witnesses
from publicmesh.settings import Settings
from publicmesh.storage import engine_for
from publicmesh.storage.engines import database_name
from publicmesh.witness.bootstrap import bootstrap


def record(i: int) -> ExchangeRecord:
    return ExchangeRecord(
        kind="query",
        at="2026-12-07T10:00:00.000Z",
        consumer="MUNI/012084/child-allowance",
        provider="MUNI/012084/resident-registry",
        dataset="person",
        attributes=("status",),
        purpose="child-allowance-eligibility",
        legal_basis="番号法別表 第2項",
        subject=f"s-{i}",
        request_id=f"r-{i}",
        outcome="ok",
    )


@pytest.fixture
def mesh_keys(tmp_path):
    settings = Settings(data_dir=tmp_path)
    log = AuditLog(engine_for("audit", settings), load_or_create_audit_key(settings.keys_dir))
    return settings, log


def submission(log: AuditLog, old_size: int, checkpoint: Checkpoint | None = None) -> dict:
    checkpoint = checkpoint or log.latest_checkpoint()
    proof = log.consistency_proof(old_size, checkpoint.tree_size) if old_size <= checkpoint.tree_size else []
    return {
        "old_size": old_size,
        "proof": [base64.b64encode(h).decode() for h in proof],
        "checkpoint": checkpoint.as_dict(),
    }


def test_the_witness_cosigns_a_growing_log_and_refuses_a_smaller_or_forked_one(mesh_keys):
    settings, log = mesh_keys
    log.append_many([record(i) for i in range(7)])
    with TestClient(bootstrap(settings)) as witness:
        assert witness.get("/v1/checkpoint").status_code == 404
        first = witness.post("/v1/add-checkpoint", json=submission(log, 0))
        assert first.status_code == 200, first.text
        seven = log.latest_checkpoint()
        cosignature = Cosignature.from_dict(first.json()["cosignature"])
        assert cosignature.verify(load_witness_public_key(settings.keys_dir), seven)
        assert not cosignature.verify(load_witness_public_key(settings.keys_dir), log.checkpoint(0))

        log.append_many([record(i) for i in range(7, 12)])
        grown = witness.post("/v1/add-checkpoint", json=submission(log, 7))
        assert grown.status_code == 200, grown.text
        assert witness.get("/v1/checkpoint").json()["checkpoint"]["tree_size"] == 12

        # Smaller than what was cosigned: refused, and the witness says what it holds.
        smaller = witness.post("/v1/add-checkpoint", json=submission(log, 12, seven))
        assert smaller.status_code == 409 and smaller.json()["tree_size"] == 12
        assert smaller.headers["content-type"] == "application/problem+json"
        assert smaller.json()["type"].endswith("witness-conflict")
        # From a size the witness does not hold: refused with the size to prove from.
        stale = witness.post("/v1/add-checkpoint", json=submission(log, 7))
        assert stale.status_code == 409 and stale.json()["tree_size"] == 12

        # A fork: the same log key signs a different tree of 14 entries; no proof from 12 can join them.
        other = AuditLog(engine_for("other-audit", settings), load_or_create_audit_key(settings.keys_dir))
        other.append_many([record(100 + i) for i in range(14)])
        log.append_many([record(i) for i in range(12, 14)])
        forked = {**submission(log, 12), "checkpoint": other.latest_checkpoint().as_dict()}
        refused = witness.post("/v1/add-checkpoint", json=forked)
        assert refused.status_code == 409 and "fork" in refused.json()["detail"]

        # Not signed by the log's key, malformed, another log: refused without a cosignature.
        forged = Checkpoint.sign(Ed25519PrivateKey.generate(), DEFAULT_LOG_ID, 14, log.root(), "t")
        assert witness.post("/v1/add-checkpoint", json=submission(log, 12, forged)).status_code == 403
        assert witness.post("/v1/add-checkpoint", json={"old_size": -1}).status_code == 422
        unknown = {**submission(log, 12), "checkpoint": {**log.latest_checkpoint().as_dict(), "log_id": "elsewhere"}}
        assert witness.post("/v1/add-checkpoint", json=unknown).status_code == 404
        assert witness.get("/v1/checkpoint").json()["checkpoint"]["tree_size"] == 12

    store = settings.data_dir / f"{database_name('witness')}.db"
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(settings.keys_dir / "witness" / "witness.key").st_mode) == 0o600


def test_the_hub_submits_its_latest_checkpoint_and_keeps_the_cosignature(mesh_keys):
    settings, log = mesh_keys
    app = bootstrap(settings)

    async def rounds() -> list[int]:
        witnesses = Witnesses(log, ["http://witness"])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
            done = []
            for batch in (range(0, 5), range(5, 6), range(6, 40)):
                for i in batch:
                    log.append(record(i))
                done.append(await witnesses.submit_latest(client))
            done.append(await witnesses.submit_latest(client))  # nothing new: the witness is not asked again
            return done

    assert asyncio.run(rounds()) == [1, 1, 1, 0]
    checkpoint, (cosignature,) = log.latest_witnessed()
    assert checkpoint.tree_size == 40
    assert cosignature.verify(load_witness_public_key(settings.keys_dir), checkpoint)


def test_the_hub_proves_from_the_size_a_restarted_witness_holds(mesh_keys):
    settings, log = mesh_keys
    app = bootstrap(settings)
    log.append_many([record(i) for i in range(9)])

    async def rounds() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
            assert await Witnesses(log, ["http://witness"]).submit_latest(client) == 1
            log.append_many([record(i) for i in range(9, 30)])
            # A new hub process knows nothing of the witness: it asks for the size the witness holds.
            assert await Witnesses(log, ["http://witness"]).submit_latest(client) == 1

    asyncio.run(rounds())
    assert log.latest_witnessed()[0].tree_size == 30


@pytest.mark.storage
def test_the_witness_store_advances_only_from_the_head_it_was_checked_against(engine, tmp_path):
    from sqlalchemy import func, select

    from publicmesh.witness.store import WitnessStore, history

    key = Ed25519PrivateKey.generate()
    witness_key = Ed25519PrivateKey.generate()
    store = WitnessStore(engine, "w")
    first = Checkpoint.sign(key, DEFAULT_LOG_ID, 3, bytes(32), "t1")
    second = Checkpoint.sign(key, DEFAULT_LOG_ID, 9, bytes([1]) * 32, "t2")
    cosign = lambda c: Cosignature.sign(witness_key, "w", 1_800_000_000, c)  # noqa: E731
    assert store.latest(DEFAULT_LOG_ID) is None
    assert store.advance(None, first, cosign(first))
    assert not store.advance(None, first, cosign(first))  # a second "first" loses
    assert store.advance(3, second, cosign(second))
    assert not store.advance(3, second, cosign(second))  # the head moved: checked against a stale one
    held, cosignature = store.latest(DEFAULT_LOG_ID)
    assert held == second and cosignature.verify(witness_key.public_key(), second)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(history)).scalar() == 2


def test_the_hub_does_not_ask_a_witness_to_cosign_a_log_cut_back_below_what_it_cosigned(mesh_keys, caplog):
    settings, log = mesh_keys
    app = bootstrap(settings)
    log.append_many([record(i) for i in range(10)])
    smaller = AuditLog(engine_for("smaller-audit", settings), load_or_create_audit_key(settings.keys_dir))
    smaller.append_many([record(i) for i in range(6)])

    async def rounds() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
            done = [await Witnesses(log, ["http://witness"]).submit_latest(client)]
            cut = Witnesses(smaller, ["http://witness"])  # the same log, as a hub that cut it back would hold it
            done += [await cut.submit_latest(client), await cut.submit_latest(client)]
            return done

    assert asyncio.run(rounds()) == [1, 0, 0]
    said = [r.getMessage() for r in caplog.records if "cosigned size 10 but the audit log holds 6" in r.getMessage()]
    assert len(said) == 1
