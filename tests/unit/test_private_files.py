"""Stores, keys, payout files and demo credentials are owner-only (0600 files in 0700 folders) whatever the umask,
and a store or key made by an earlier version with looser modes is tightened when opened."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from publicmesh.audit.keys import load_or_create_audit_key
from publicmesh.identity.keys import load_or_create_secret
from publicmesh.numbers.keys import load_or_create_master
from publicmesh.protocol.ca import MeshCA
from publicmesh.protocol.members import MemberId
from publicmesh.runtime.provision import member_key
from publicmesh.settings import Settings
from publicmesh.storage.engines import engine_for
from publicmesh.storage.private import create_private_file, private_dir, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def loose_umask():
    """The usual 022 umask, which alone would make 0644 files in 0755 folders."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "mesh" / "data", database_url="")


def test_a_store_and_its_wal_and_shm_are_owner_only(settings):
    engine = engine_for("hub", settings)
    with engine.connect() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
        conn.commit()
        db = settings.data_dir / "publicmesh_hub.db"
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            assert path.exists() and mode(path) == 0o600, path
    engine.dispose()
    assert mode(settings.data_dir) == 0o700 and mode(settings.data_dir.parent) == 0o700


def test_an_older_store_is_tightened_when_opened(settings):
    settings.data_dir.mkdir(parents=True, mode=0o755)
    os.chmod(settings.data_dir, 0o755)
    db = settings.data_dir / "publicmesh_hub.db"
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        path.touch()
        os.chmod(path, 0o644)
    engine_for("hub", settings).dispose()
    assert mode(settings.data_dir) == 0o700
    assert [mode(p) for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"))] == [0o600] * 3


def test_keys_are_owner_only(settings):
    keys = settings.keys_dir
    ca = MeshCA.load_or_create(keys)
    member_key(settings, ca, MemberId.parse("MUNI/012084/resident-registry"))
    load_or_create_audit_key(keys)
    load_or_create_master(keys)
    load_or_create_secret(keys, "staff-totp.key")
    folders = [p for p in keys.rglob("*") if p.is_dir()] + [keys]
    secrets = [p for p in keys.rglob("*") if p.is_file() and p.suffix not in (".pem", ".pub")]
    assert len(secrets) >= 5 and {mode(p) for p in secrets} == {0o600}, {p.name: oct(mode(p)) for p in secrets}
    assert {mode(p) for p in folders} == {0o700}


def test_an_older_key_is_tightened(settings):
    keys = settings.keys_dir
    load_or_create_audit_key(keys)
    load_or_create_master(keys)
    for name in ("audit.key", "numbers.master"):
        os.chmod(keys / name, 0o644)
    os.chmod(keys, 0o755)
    load_or_create_audit_key(keys)
    load_or_create_master(keys)
    assert mode(keys) == 0o700 and mode(keys / "audit.key") == mode(keys / "numbers.master") == 0o600


def test_written_files_are_owner_only_from_the_start(tmp_path):
    path = tmp_path / "payouts" / "a.zengin"
    write_private(path, b"1")
    write_private(path, b"2")  # replaced, still owner-only
    assert path.read_bytes() == b"2" and mode(path) == 0o600 and mode(path.parent) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["a.zengin"]


def test_a_shared_sticky_folder_is_left_alone(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    private_dir(shared)
    assert mode(shared) == 0o1777


def test_an_existing_store_file_is_never_opened_to_make_it_private(tmp_path, monkeypatch):
    # Closing any descriptor of a SQLite file drops every POSIX lock the process holds on it, its open
    # connections' included: the node's own connections then read without their lock.
    store = tmp_path / "store.db"
    store.write_bytes(b"")
    store.chmod(0o644)
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, *a, **k: opened.append(path) or real_open(path, *a, **k))
    create_private_file(store)
    assert opened == [] and stat.S_IMODE(store.stat().st_mode) == 0o600
    create_private_file(tmp_path / "new.db")
    assert opened == [tmp_path / "new.db"]
