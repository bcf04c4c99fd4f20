"""``publicmesh backup`` of a running mesh, more exchanges, a stop and a wipe, ``publicmesh restore``, ``publicmesh
audit verify``, and the mesh started again goes on: on SQLite and on PostgreSQL, each on a small mesh of its own
(its own ports, and on PostgreSQL its own database prefix beside the shared test mesh's databases)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import httpx
import pytest
from backends import DATABASE_URL, require
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from publicmesh.agencies.resident_registry import residents
from publicmesh.audit import AuditLog, Checkpoint
from publicmesh.audit.log import DEFAULT_LOG_ID
from publicmesh.numbers.keys import load_or_create_master
from publicmesh.numbers.pseudonyms import PseudonymService
from publicmesh.protocol.client import MeshClient
from publicmesh.runtime.backup import databases
from publicmesh.runtime.provision import provision
from publicmesh.runtime.seed import fresh_stores, seed
from publicmesh.runtime.supervisor import Supervisor
from publicmesh.runtime.topology import municipalities, part
from publicmesh.settings import Settings
from publicmesh.storage import engine_for

RESIDENTS = 300
PASSPHRASE = "backup test passphrase"
CONSUMER, PROVIDER = "MUNI/012084/child-allowance", "MUNI/012084/resident-registry"
# The session meshes use +0 and +100, the fuzz mesh +50, the JetStream mesh +200, the backup unit tests +250
# (nothing listening), the browser mesh 9400 (+300 by default).
PORTS = {"sqlite": 150, "postgresql": 350}
# The parts an exchange and its witnessing need (a whole mesh takes three times as long to start); the backup still
# copies every store, which provisioning and seeding made.
PARTS = ["numbers", "witness", "hub", "resident-registry"]


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PUBLICMESH_DATA_DIR": str(settings.data_dir),
        "PUBLICMESH_DATABASE_URL": settings.database_url,
        "PUBLICMESH_DATABASE_PREFIX": settings.database_prefix,
        "PUBLICMESH_BASE_PORT": str(settings.base_port),
        "PUBLICMESH_BACKUP_PASSPHRASE": PASSPHRASE,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "publicmesh.cli", *args], env=env, capture_output=True, text=True, timeout=180
    )


def exchange(settings: Settings) -> int:
    """One signed query through the hub; its audit position."""
    engine = engine_for("resident-registry", settings)
    query = select(residents.c.pseudonym).where(residents.c.tenant == "012084").order_by(residents.c.pseudonym)
    with engine.connect() as conn:
        pseudonym = conn.execute(query.limit(1)).scalar()
    engine.dispose()
    numbers = PseudonymService(load_or_create_master(settings.keys_dir))
    subject = numbers.convert([pseudonym], "resident-registry", ["child-allowance"])["child-allowance"][0]
    client = MeshClient.for_member(settings, CONSUMER, part(settings, "hub").url(settings))
    answer = client.query(PROVIDER, "person", subject, ["status"], "child-allowance-eligibility")
    return int(answer["audit_record"])


def audit_size(settings: Settings) -> int:
    engine = engine_for("audit", settings)
    try:
        return AuditLog(engine, None).size()
    finally:
        engine.dispose()


def wipe(settings: Settings) -> None:
    """Every store of this mesh (of its prefix only, on PostgreSQL) and its data dir, keys included."""
    if settings.database_url:
        admin = create_engine(make_url(settings.database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in databases(settings):
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
    shutil.rmtree(settings.data_dir)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_back_up_run_more_wipe_restore_verify_and_continue(backend, tmp_path):
    require(backend)
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=DATABASE_URL if backend == "postgresql" else "",
        database_prefix="backuptest",
        base_port=int(os.environ.get("PUBLICMESH_TEST_BASE_PORT", 9100)) + PORTS[backend],
    )
    if settings.database_url:
        if databases(settings):  # left by a run killed before its cleanup
            settings.data_dir.mkdir()
            wipe(settings)
    fresh_stores(settings)
    provision(settings)
    seed(settings, RESIDENTS, municipalities(), 11)
    supervisor = Supervisor(settings)
    try:
        supervisor.start(PARTS)
        exchange(settings)
        made = cli(settings, "backup", str(tmp_path / "backup"))
        assert made.returncode == 0, made.stdout + made.stderr
        assert "Backed up" in made.stdout and " s;" in made.stdout
        manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
        checkpoint = Checkpoint.from_dict(manifest["checkpoint"])
        assert checkpoint.tree_size >= 1
        after_backup = exchange(settings)  # lost by the restore: it came after the backup (the RPO)
    finally:
        supervisor.stop()
    assert after_backup >= checkpoint.tree_size
    wipe(settings)

    restored = cli(settings, "restore", str(tmp_path / "backup"))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "(RTO)" in restored.stdout and f"checkpoint at size {checkpoint.tree_size}" in restored.stdout
    verified = cli(settings, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # The restored log holds the manifest's checkpoint, and not the exchange made after the backup.
    engine = engine_for("audit", settings)
    log = AuditLog(engine, None)
    held = log.checkpoint(checkpoint.tree_size)
    assert held is not None and held.root == checkpoint.root and held.signature == checkpoint.signature
    assert checkpoint.tree_size <= log.size() <= after_backup
    engine.dispose()

    supervisor = Supervisor(settings)
    try:
        supervisor.start(PARTS)
        position = exchange(settings)
        assert position >= checkpoint.tree_size
        # The witness, restored with the rest, goes on cosigning the log from where its copy stood.
        witness = part(settings, "witness").url(settings)

        def cosigned() -> bool:
            answer = httpx.get(f"{witness}/v1/checkpoint", params={"log_id": DEFAULT_LOG_ID}, timeout=5)
            return answer.status_code == 200 and answer.json()["checkpoint"]["tree_size"] > position

        deadline = time.monotonic() + 30
        while not cosigned() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert cosigned()
    finally:
        supervisor.stop()
        if settings.database_url:
            wipe(settings)
