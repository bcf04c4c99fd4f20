"""``publicmesh audit verify`` on the live log of a running mesh, before and after tampering."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import text

from publicmesh.storage import engine_for


def _verify(mesh) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PUBLICMESH_DATA_DIR": str(mesh.settings.data_dir),
        "PUBLICMESH_DATABASE_URL": mesh.settings.database_url,
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
