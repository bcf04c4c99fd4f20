"""``publicmesh audit verify`` on the live log of a running mesh, before and after tampering."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys

import httpx
from sqlalchemy import text

from publicmesh.audit import AuditLog, Checkpoint, Cosignature
from publicmesh.audit.keys import load_witness_public_key
from publicmesh.audit.merkle import verify_consistency
from publicmesh.storage import engine_for


def _verify(mesh) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PUBLICMESH_DATA_DIR": str(mesh.settings.data_dir),
        "PUBLICMESH_DATABASE_URL": mesh.settings.database_url,
        "PUBLICMESH_BASE_PORT": str(mesh.settings.base_port),  # this mesh's witness, not another's
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "publicmesh.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_audit_verify_passes_then_finds_the_altered_record(mesh, people):
    subjects = people.convert(people.registry(limit=5), "resident-registry", "child-allowance")
    for s in subjects:
        mesh.client("MUNI/012084/child-allowance").query(
            "MUNI/012084/resident-registry", "person", s, ["status"], "child-allowance-eligibility"
        )
    ok = _verify(mesh)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    engine = engine_for("audit", mesh.settings)
    with engine.begin() as conn:
        position = conn.execute(text("SELECT MAX(position) FROM audit_records")).scalar() - 2
        original = conn.execute(text("SELECT purpose FROM audit_records WHERE position = :p"), {"p": position}).scalar()
        conn.execute(text("UPDATE audit_records SET purpose = 'curiosity' WHERE position = :p"), {"p": position})
    try:
        tampered = _verify(mesh)
        assert tampered.returncode == 1
        assert f"position {position}" in tampered.stdout
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE audit_records SET purpose = :o WHERE position = :p"), {"o": original, "p": position}
            )
        engine.dispose()
    assert _verify(mesh).returncode == 0


def test_the_witness_cosigns_the_running_hubs_checkpoints(mesh, people):
    """The hub sends its checkpoints to the mesh's witness, which cosigns them; verify reads what it cosigned."""
    subject = people.convert(people.registry(limit=1), "resident-registry", "child-allowance")[0]
    mesh.client("MUNI/012084/child-allowance").query(
        "MUNI/012084/resident-registry", "person", subject, ["status"], "child-allowance-eligibility"
    )
    size = mesh.audit_size()

    def cosigned():
        answer = httpx.get(mesh.url("witness") + "/v1/checkpoint", timeout=5)
        return answer.status_code == 200 and answer.json()["checkpoint"]["tree_size"] >= size and answer.json()

    doc = mesh.wait_for(cosigned, 30)
    checkpoint, cosignature = Checkpoint.from_dict(doc["checkpoint"]), Cosignature.from_dict(doc["cosignature"])
    assert cosignature.verify(load_witness_public_key(mesh.settings.keys_dir), checkpoint)

    def kept_by_the_hub():
        answer = httpx.get(mesh.url("hub") + "/v1/audit/witnessed", timeout=5)
        return answer.status_code == 200 and answer.json()["checkpoint"]["tree_size"] >= size and answer.json()

    witnessed = mesh.wait_for(kept_by_the_hub, 10)
    assert witnessed["cosignatures"][0]["witness"] == "publicmesh-witness"
    proof = httpx.get(mesh.url("hub") + "/v1/audit/consistency", params={"from": 1}, timeout=5)
    assert proof.status_code == 200 and proof.json()["from"] == 1
    ok = _verify(mesh)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "cosigned size" in ok.stdout


def test_the_portal_answers_consistency_proofs_the_browser_checks(mesh):
    """What /static/consistency.js asks for: a proof, through the portal, between two of the log's checkpoints."""
    card = json.loads((mesh.settings.data_dir / "demo-cards.json").read_text(encoding="utf-8"))[0]
    person = mesh.portal_login(card["card_id"])
    mesh.wait_for(lambda: httpx.get(mesh.url("hub") + "/v1/audit/witnessed", timeout=5).status_code == 200, 30)
    page = person.get("/records").text
    assert "証人（publicmesh-witness）が記録総数" in page  # the page names the checkpoint the witness cosigned
    assert '<script src="/static/consistency.js" defer></script>' in page
    size = int(re.search(r'data-size="(\d+)"', page).group(1))
    root = base64.b64decode(re.search(r'data-root="([^"]+)"', page).group(1))
    person.get("/me")  # the log grows
    engine = engine_for("audit", mesh.settings)
    try:
        log = AuditLog(engine, None)
        later = log.latest_checkpoint()
        answer = person.get("/records/consistency", params={"from": size, "to": later.tree_size})
        assert answer.status_code == 200, answer.text
        proof = [base64.b64decode(h) for h in answer.json()["proof"]]
        assert later.tree_size > size and verify_consistency(size, later.tree_size, root, later.root, proof)
        assert log.checkpoint(size).root == root
    finally:
        engine.dispose()
    backwards = person.get("/records/consistency", params={"from": later.tree_size + 1, "to": later.tree_size})
    assert backwards.status_code == 422 and backwards.headers["content-type"] == "application/problem+json"
    anonymous = httpx.get(mesh.url("portal") + "/records/consistency", params={"from": 0, "to": 1})
    assert anonymous.status_code == 404
