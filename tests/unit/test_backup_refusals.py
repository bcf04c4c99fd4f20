"""Backup and restore of a stopped mesh's data dir on SQLite: the round trip, and what a restore refuses before it
writes anything (a wrong passphrase, a tampered file, stores in the way, a running mesh)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from publicmesh.audit import AuditLog
from publicmesh.audit.keys import load_or_create_audit_key
from publicmesh.audit.records import ExchangeRecord
from publicmesh.runtime.backup import BackupError, backup, restore
from publicmesh.runtime.provision import provision
from publicmesh.runtime.topology import part
from publicmesh.settings import Settings
from publicmesh.storage import engine_for
from publicmesh.witness.core import WITNESS_NAME
from publicmesh.witness.store import WitnessStore

PASSPHRASE = "correct horse battery staple"
BASE_PORT = int(os.environ.get("PUBLICMESH_TEST_BASE_PORT", 9100)) + 250  # nothing of the mesh listens here


def record(i: int) -> ExchangeRecord:
    return ExchangeRecord(
        kind="event",
        at="2026-11-23T10:00:00.000Z",
        consumer="MUNI/012084/child-allowance",
        provider="MUNI/012084/resident-registry",
        dataset="person",
        attributes=("status",),
        purpose="child-allowance-eligibility",
        legal_basis="番号法第19条第8号",
        subject=f"ap-{i}",
        request_id=f"req-{i}",
        outcome="ok",
    )


@pytest.fixture
def settings(tmp_path) -> Settings:
    """A provisioned data dir whose audit log holds three records under a signed checkpoint."""
    settings = Settings(data_dir=tmp_path / "data", database_url="", base_port=BASE_PORT)
    provision(settings)
    engine = engine_for("audit", settings)
    log = AuditLog(engine, load_or_create_audit_key(settings.keys_dir))
    log.append_many([record(i) for i in range(3)])
    engine.dispose()
    witness = engine_for("witness", settings)
    WitnessStore(witness, WITNESS_NAME)
    witness.dispose()
    (settings.data_dir / "payouts").mkdir()
    (settings.data_dir / "payouts" / "012084.txt").write_text("zengin")
    return settings


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_round_trip_restores_stores_keys_and_files_and_checks_the_checkpoint(settings, tmp_path):
    keys_before = digests(settings.keys_dir)
    made = backup(settings, tmp_path / "bk", PASSPHRASE)
    manifest = json.loads((tmp_path / "bk" / "manifest.json").read_text())
    assert manifest["checkpoint"]["tree_size"] == 3
    names = [s["database"] for s in manifest["stores"]]
    assert names[0] == "publicmesh_witness" and names[-1] == "publicmesh_audit" and "publicmesh_hub" in names
    # The witness copied before any other store, the audit log after every other; all after the checkpoint was read.
    stores = manifest["stores"]
    assert manifest["checkpoint"]["read_at"] <= stores[0]["started_at"]
    assert all(stores[0]["finished_at"] <= s["started_at"] for s in stores[1:])
    assert all(s["finished_at"] <= stores[-1]["started_at"] for s in stores[:-1])
    assert (
        made.size_bytes
        == sum(s["bytes"] for s in manifest["stores"]) + manifest["secrets"]["bytes"] + (manifest["files"]["bytes"])
    )
    assert mode(tmp_path / "bk") == 0o700 and mode(tmp_path / "bk" / "stores") == 0o700
    assert all(mode(p) == 0o600 for p in (tmp_path / "bk").rglob("*") if p.is_file())
    # The keys are not readable in the backup.
    private = (settings.keys_dir / "audit.key").read_bytes()
    assert private not in (tmp_path / "bk" / "secrets.tar.fernet").read_bytes()

    shutil.rmtree(settings.data_dir)
    done = restore(settings, tmp_path / "bk", PASSPHRASE)
    assert done.manifest["verified"]["checkpoint"] == 3
    assert digests(settings.keys_dir) == keys_before
    assert (settings.data_dir / "payouts" / "012084.txt").read_text() == "zengin"
    engine = engine_for("audit", settings)
    assert AuditLog(engine, None).size() == 3
    engine.dispose()


def test_wrong_passphrase_writes_nothing(settings, tmp_path):
    backup(settings, tmp_path / "bk", PASSPHRASE)
    shutil.rmtree(settings.data_dir)
    with pytest.raises(BackupError, match="wrong passphrase"):
        restore(settings, tmp_path / "bk", "not the passphrase")
    assert not settings.data_dir.exists()


def test_a_tampered_store_is_refused_before_anything_is_written(settings, tmp_path):
    backup(settings, tmp_path / "bk", PASSPHRASE)
    store = tmp_path / "bk" / "stores" / "publicmesh_hub.db"
    data = bytearray(store.read_bytes())
    data[-100] ^= 0xFF
    store.write_bytes(bytes(data))
    shutil.rmtree(settings.data_dir)
    with pytest.raises(BackupError, match="stores/publicmesh_hub.db does not match its sha256"):
        restore(settings, tmp_path / "bk", PASSPHRASE)
    assert not settings.data_dir.exists()


def test_existing_stores_are_kept_unless_forced(settings, tmp_path):
    backup(settings, tmp_path / "bk", PASSPHRASE)
    before = digests(settings.data_dir)
    with pytest.raises(BackupError, match="--force"):
        restore(settings, tmp_path / "bk", PASSPHRASE)
    assert digests(settings.data_dir) == before
    later = engine_for("made-later", settings)  # a store made after the backup
    with later.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    later.dispose()
    restore(settings, tmp_path / "bk", PASSPHRASE, force=True)
    assert not (settings.data_dir / "publicmesh_made_later.db").exists()


def test_a_running_mesh_is_refused(settings, tmp_path):
    backup(settings, tmp_path / "bk", PASSPHRASE)
    hub = part(settings, "hub")
    with socket.socket() as listening:
        listening.bind((settings.host, hub.port))
        listening.listen()
        with pytest.raises(BackupError, match=rf"the mesh is running .*hub \({settings.host}:{hub.port}\)"):
            restore(settings, tmp_path / "bk", PASSPHRASE, force=True)


def test_an_empty_passphrase_or_a_used_folder_is_refused(settings, tmp_path):
    with pytest.raises(BackupError, match="passphrase is empty"):
        backup(settings, tmp_path / "bk", "")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(BackupError, match="not empty"):
        backup(settings, tmp_path / "used", PASSPHRASE)


def test_an_edited_manifest_is_refused(settings, tmp_path):
    """Files and their sha256s changed together: the manifest's mac, under the passphrase, no longer matches."""
    backup(settings, tmp_path / "bk", PASSPHRASE)
    store = tmp_path / "bk" / "stores" / "publicmesh_hub.db"
    store.write_bytes(store.read_bytes() + b"\0" * 10)
    path = tmp_path / "bk" / "manifest.json"
    manifest = json.loads(path.read_text())
    for entry in manifest["stores"]:
        if entry["database"] == "publicmesh_hub":
            entry["sha256"] = hashlib.sha256(store.read_bytes()).hexdigest()
    path.write_text(json.dumps(manifest))
    shutil.rmtree(settings.data_dir)
    with pytest.raises(BackupError, match="manifest.json was altered"):
        restore(settings, tmp_path / "bk", PASSPHRASE)
    assert not settings.data_dir.exists()


def test_restore_under_another_prefix(settings, tmp_path):
    backup(settings, tmp_path / "bk", PASSPHRASE)
    other = Settings(data_dir=tmp_path / "other", database_url="", base_port=BASE_PORT, database_prefix="copy")
    done = restore(other, tmp_path / "bk", PASSPHRASE)
    assert done.manifest["verified"]["checkpoint"] == 3
    assert (other.data_dir / "copy_audit.db").is_file() and not list(other.data_dir.glob("publicmesh_*"))


def test_the_commands_refuse_an_empty_passphrase(tmp_path):
    from typer.testing import CliRunner

    from publicmesh.cli import app

    for args in (["backup", str(tmp_path / "bk")], ["restore", str(tmp_path / "bk")]):
        result = CliRunner().invoke(app, args, env={"PUBLICMESH_BACKUP_PASSPHRASE": "", "COLUMNS": "200"})
        assert result.exit_code == 2 and "An empty passphrase is refused" in result.output
        result = CliRunner().invoke(
            app, args, input="\n\n", env={"PUBLICMESH_BACKUP_PASSPHRASE": None, "COLUMNS": "200"}
        )
        assert result.exit_code == 2 and "An empty passphrase is refused" in result.output
    assert not (tmp_path / "bk").exists()


def test_a_mesh_never_started_has_no_audit_log_to_verify(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", database_url="", base_port=BASE_PORT)
    provision(settings)  # the hub's registry and the keys; no audit key or store until the hub starts
    made = backup(settings, tmp_path / "bk", PASSPHRASE)
    assert made.manifest["checkpoint"] is None
    shutil.rmtree(settings.data_dir)
    done = restore(settings, tmp_path / "bk", PASSPHRASE)
    assert done.manifest["verified"] == {"audit_records": 0, "witnessed_size": None, "checkpoint": None}
    assert not (settings.data_dir / "publicmesh_witness.db").exists()


def test_a_backup_while_the_log_grows_holds_a_verifying_log(settings, tmp_path):
    """Records appended in another thread all through the copy: the copied log verifies and holds the checkpoint."""
    engine = engine_for("audit", settings)
    log = AuditLog(engine, load_or_create_audit_key(settings.keys_dir))
    stop, appended = threading.Event(), []

    def append() -> None:
        while not stop.is_set():
            appended.extend(log.append_many([record(len(appended) + i) for i in range(20)]))

    writer = threading.Thread(target=append)
    writer.start()
    try:
        while len(appended) < 200:
            time.sleep(0.01)
        made = backup(settings, tmp_path / "bk", PASSPHRASE)
        while len(appended) < made.manifest["checkpoint"]["tree_size"] + 200:
            time.sleep(0.01)
    finally:
        stop.set()
        writer.join()
        engine.dispose()
    shutil.rmtree(settings.data_dir)
    done = restore(settings, tmp_path / "bk", PASSPHRASE)
    verified = done.manifest["verified"]
    assert verified["checkpoint"] == made.manifest["checkpoint"]["tree_size"] >= 200
    assert verified["checkpoint"] <= verified["audit_records"] < len(appended) + 3
