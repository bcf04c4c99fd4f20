"""Backup and restore (共通BCP): every store with its engine's own tool, the keys encrypted under a passphrase, and a
manifest that names the audit checkpoint the backup is consistent with."""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.metadata
import io
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import tarfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from publicmesh.audit import AuditLog, Checkpoint
from publicmesh.audit.keys import load_audit_public_key
from publicmesh.audit.log import DEFAULT_LOG_ID, verify_store
from publicmesh.runtime.topology import parts
from publicmesh.settings import Settings
from publicmesh.storage import database_name, engine_for, is_postgres
from publicmesh.storage.private import create_private_file, private_dir, private_file, write_private
from publicmesh.witness.core import WITNESS_NAME
from publicmesh.witness.store import WitnessStore

FORMAT = "publicmesh-backup"
VERSION = 1
MANIFEST = "manifest.json"
SECRETS = "secrets.tar.fernet"  # the keys folder and the demo credentials, encrypted
FILES = "files.tar"  # payout files, uploaded definitions, the notice outbox: plain
# Secrets beside the keys folder: the demo cards' and staff accounts' credentials.
SECRET_FILES = ("demo-cards.json", "demo-staff.json")
# Not data: the parts' logs. The stores and secrets are copied their own way.
SKIPPED = {"logs", "keys", *SECRET_FILES}
STORE = re.compile(r"[a-z0-9_]{1,63}")  # what database_name makes
# scrypt as RFC 7914 recommends for interactive use (2^15, 8, 1): about 0.1 s and 32 MiB per derivation.
SCRYPT = {"n": 1 << 15, "r": 8, "p": 1}
WORKERS = 4  # stores copied at once: pg_dump and pg_restore mostly wait on the server

Progress = Callable[[str, int, int], None]  # (what, done, total)


class BackupError(Exception):
    """A backup or restore refused or failed; the message says why and what was (not) written."""


@dataclass(frozen=True)
class Outcome:
    """What a backup or a restore did."""

    directory: Path
    seconds: float
    size_bytes: int
    manifest: dict


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _keys(passphrase: str, salt: bytes, params: dict) -> tuple[Fernet, bytes]:
    """The Fernet key of the secrets and the HMAC key of the manifest, both derived from the passphrase."""
    if not passphrase:
        raise BackupError("the passphrase is empty: give one (prompt or PUBLICMESH_BACKUP_PASSPHRASE)")
    derived = Scrypt(salt=salt, length=64, n=params["n"], r=params["r"], p=params["p"]).derive(passphrase.encode())
    return Fernet(base64.urlsafe_b64encode(derived[:32])), derived[32:]


def _mac(key: bytes, manifest: dict) -> str:
    """HMAC-SHA256 of the manifest without its mac, canonical JSON: a manifest edited to match edited files is
    caught too."""
    body = {k: v for k, v in manifest.items() if k != "mac"}
    canonical = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def _sync(*paths: Path) -> None:
    """Each file (and folder) on disk before it counts as backed up or restored."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _version() -> str:
    try:
        return importlib.metadata.version("publicmesh")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# --- where the stores are ---------------------------------------------------------------------------------------


def _admin_url(settings: Settings) -> URL:
    return make_url(settings.database_url).set(database="postgres")


def _prefix(settings: Settings) -> str:
    return database_name("", settings)  # the prefix and its "_"


def databases(settings: Settings) -> list[str]:
    """The mesh's stores as they exist: SQLite files under the data dir, or PostgreSQL databases (of this prefix)."""
    if is_postgres(settings):
        admin = create_engine(_admin_url(settings))
        try:
            with admin.connect() as conn:
                names = conn.execute(
                    text("SELECT datname FROM pg_database WHERE datname LIKE :p ORDER BY datname"),
                    {"p": _prefix(settings).replace("_", r"\_") + "%"},
                ).scalars()
                return list(names)
        finally:
            admin.dispose()
    if not settings.data_dir.is_dir():
        return []
    return sorted(p.stem for p in settings.data_dir.glob(f"{_prefix(settings)}*.db"))


def _order(settings: Settings, names: list[str]) -> list[str]:
    """The witness first (what it cosigned is then at most what the audit copy holds), the audit log last (it then
    holds every record the other stores name)."""
    witness, audit = database_name("witness", settings), database_name("audit", settings)
    middle = [n for n in names if n not in (witness, audit)]
    return [n for n in (witness,) if n in names] + middle + [n for n in (audit,) if n in names]


def _libpq(settings: Settings, database: str) -> tuple[list[str], dict[str, str]]:
    """Connection arguments for pg_dump and pg_restore (the password in the environment, not on the command line)."""
    url = make_url(settings.database_url)
    args = ["--dbname", database]
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if candidates:
        return str(candidates[-1])
    raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client)")


def _pg_dump_version() -> str:
    return subprocess.run([_tool("pg_dump"), "--version"], capture_output=True, text=True).stdout.strip()


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {done.stderr.strip()[-2000:]}")


# --- backup -----------------------------------------------------------------------------------------------------


def _latest_checkpoint(settings: Settings, names: list[str]) -> Checkpoint | None:
    if database_name("audit", settings) not in names:
        return None
    engine = engine_for("audit", settings, create=False)
    try:
        return AuditLog(engine, None).latest_checkpoint()
    except LookupError:
        return None
    finally:
        engine.dispose()


def _copy_sqlite(settings: Settings, name: str, target: Path) -> None:
    """SQLite's online backup in one step: one read transaction, so a consistent snapshot while writers go on (WAL)."""
    create_private_file(target)
    # Read-write: a read-only connection cannot open a WAL store whose -shm file is gone (the mesh stopped).
    source = sqlite3.connect(settings.data_dir / f"{name}.db", timeout=30)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        copy.close()
        source.close()
    for companion in ("-wal", "-shm", "-journal"):
        Path(f"{target}{companion}").unlink(missing_ok=True)
    _sync(target)


def _dump_postgres(settings: Settings, name: str, target: Path) -> None:
    create_private_file(target)
    args, env = _libpq(settings, name)
    _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "--file", str(target), *args], env)
    private_file(target)


def _tar(members: list[tuple[str, Path]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for arcname, path in members:
            tar.add(path, arcname=arcname)
    return buffer.getvalue()


def _plain_files(settings: Settings, target: Path) -> list[tuple[str, Path]]:
    """What else the data dir holds (payout files, uploaded definitions, the notice outbox), but not the backup."""
    out = []
    for path in sorted(settings.data_dir.iterdir()) if settings.data_dir.is_dir() else []:
        if path.name in SKIPPED or path.name.startswith(_prefix(settings)) or path.name.startswith("."):
            continue
        if path.resolve() == target.resolve() or target.resolve().is_relative_to(path.resolve()):
            continue
        out.append((path.name, path))
    return out


def _groups(settings: Settings, names: list[str]) -> list[list[str]]:
    first, last = [names[0]] if names[0] == database_name("witness", settings) else [], names[-1:]
    if last == first or last[0] != database_name("audit", settings):
        last = []
    return [g for g in (first, [n for n in names if n not in first + last], last) if g]


def _copy_store(settings: Settings, directory: Path, name: str) -> dict:
    entry: dict = {"database": name, "started_at": now()}
    if is_postgres(settings):
        file = directory / "stores" / f"{name}.dump"
        entry["tool"] = "pg_dump --format=custom"
        _dump_postgres(settings, name, file)
    else:
        file = directory / "stores" / f"{name}.db"
        entry["tool"] = "sqlite3 online backup"
        _copy_sqlite(settings, name, file)
    entry.update(finished_at=now(), file=str(file.relative_to(directory)), bytes=file.stat().st_size)
    entry["sha256"] = _sha256(file)
    return entry


def backup(settings: Settings, directory: Path, passphrase: str, progress: Progress | None = None) -> Outcome:
    """Copy every store and the keys of the mesh (running or not) into ``directory``, which must be new or empty."""
    started, clock = now(), time.monotonic()
    salt = os.urandom(16)
    fernet, mac_key = _keys(passphrase, salt, SCRYPT)
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty: back up into a new folder")
    if not settings.keys_dir.is_dir():
        raise BackupError(f"no keys folder at {settings.keys_dir}: nothing to back up")
    names = _order(settings, databases(settings))
    if not names:
        raise BackupError(
            f"no stores found ({'on ' + settings.database_url if is_postgres(settings) else settings.data_dir})"
        )
    private_dir(directory / "stores")
    checkpoint = _latest_checkpoint(settings, names)
    manifest: dict = {
        "format": FORMAT,
        "version": VERSION,
        "publicmesh": _version(),
        "sqlite": sqlite3.sqlite_version,
        "pg_dump": _pg_dump_version() if is_postgres(settings) else None,
        "backend": "postgresql" if is_postgres(settings) else "sqlite",
        "prefix": _prefix(settings),
        "started_at": started,
        "checkpoint": None if checkpoint is None else {**checkpoint.as_dict(), "read_at": now()},
        "consistency": (
            "The checkpoint was read before any copy. The witness's store was copied first and the audit store last: "
            "the audit copy holds the checkpoint, what the witness cosigned and every record the other stores name."
        ),
        "stores": [],
    }
    total = len(names) + 2
    for group in _groups(settings, names):  # the witness, the others side by side, then the audit store
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            for entry in pool.map(lambda name: _copy_store(settings, directory, name), group):
                manifest["stores"].append(entry)
                if progress:
                    progress(entry["database"], len(manifest["stores"]), total)
    if progress:
        progress("keys", len(names), total)
    secrets = [("keys", settings.keys_dir)] + [
        (f, settings.data_dir / f) for f in SECRET_FILES if (settings.data_dir / f).is_file()
    ]
    write_private(directory / SECRETS, fernet.encrypt(_tar(secrets)))
    manifest["secrets"] = {
        "file": SECRETS,
        "holds": [arcname for arcname, _ in secrets],
        "bytes": (directory / SECRETS).stat().st_size,
        "sha256": _sha256(directory / SECRETS),
        "encryption": {"scheme": "fernet", "kdf": "scrypt", **SCRYPT, "salt": base64.b64encode(salt).decode()},
    }
    if progress:
        progress("files", len(names) + 1, total)
    plain = _plain_files(settings, directory)
    write_private(directory / FILES, _tar(plain))
    manifest["files"] = {
        "file": FILES,
        "holds": [arcname for arcname, _ in plain],
        "bytes": (directory / FILES).stat().st_size,
        "sha256": _sha256(directory / FILES),
    }
    seconds = round(time.monotonic() - clock, 3)
    size = sum(e["bytes"] for e in manifest["stores"]) + manifest["secrets"]["bytes"] + manifest["files"]["bytes"]
    manifest.update(finished_at=now(), seconds=seconds, size_bytes=size)
    manifest["mac"] = _mac(mac_key, manifest)
    write_private(directory / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1).encode())
    _sync(directory / SECRETS, directory / FILES, directory / MANIFEST, directory / "stores", directory)
    if progress:
        progress("done", total, total)
    return Outcome(directory, seconds, size, manifest)


# --- restore ----------------------------------------------------------------------------------------------------


def read_manifest(directory: Path) -> dict:
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{directory} holds no {MANIFEST}: not a backup") from None
    except ValueError as exc:
        raise BackupError(f"{directory / MANIFEST} is not JSON: {exc}") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise BackupError(f"{directory} is not a backup of version {VERSION} of this format")
    return manifest


def check_files(directory: Path, manifest: dict) -> None:
    """Every file the manifest names exists with its sha256 (BackupError naming each one that does not)."""
    entries = [*manifest["stores"], manifest["secrets"], manifest["files"]]
    bad = [f"{e['database']!r} is no store name" for e in manifest["stores"] if not STORE.fullmatch(e["database"])]
    for entry in entries:
        path = (directory / entry["file"]).resolve()
        if not path.is_relative_to(directory.resolve()):
            bad.append(f"{entry['file']} lies outside the backup")
        elif not path.is_file():
            bad.append(f"{entry['file']} is missing")
        elif _sha256(path) != entry["sha256"]:
            bad.append(f"{entry['file']} does not match its sha256")
    if bad:
        raise BackupError("the backup is damaged, nothing was written: " + "; ".join(bad))


def running_parts(settings: Settings) -> list[str]:
    """The parts whose port is taken (the mesh, or something else, still listening)."""
    taken = []
    for p in parts(settings):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((settings.host, p.port)) == 0:
                taken.append(f"{p.name} ({settings.host}:{p.port})")
    return taken


def _check_tar(data: bytes, into: Path) -> None:
    """Regular files and folders only, inside ``into`` (BackupError otherwise)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        for member in tar.getmembers():
            path = (into / member.name).resolve()
            if not (member.isfile() or member.isdir()) or not path.is_relative_to(into.resolve()):
                raise BackupError(f"the backup holds {member.name!r}, which is not a plain file inside the data dir")


def _untar(data: bytes, into: Path) -> None:
    """Extract a tar whose members ``_check_tar`` passed (Python 3.11.4 and later filter them once more)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)


def restore(
    settings: Settings, directory: Path, passphrase: str, *, force: bool = False, progress: Progress | None = None
) -> Outcome:
    """Put a backup back into the settings' data dir (or PostgreSQL), then verify the audit log holds the manifest's
    checkpoint. Everything is checked (files, passphrase, a stopped mesh, no stores in the way) before anything is
    written."""
    clock = time.monotonic()
    manifest = read_manifest(directory)
    backend = "postgresql" if is_postgres(settings) else "sqlite"
    if manifest["backend"] != backend:
        raise BackupError(f"this backup is of a {manifest['backend']} mesh; the settings name {backend}")
    check_files(directory, manifest)
    encryption = manifest["secrets"]["encryption"]
    fernet, mac_key = _keys(passphrase, base64.b64decode(encryption["salt"]), encryption)
    try:
        secrets = fernet.decrypt((directory / SECRETS).read_bytes())
    except InvalidToken:
        raise BackupError("wrong passphrase (or the keys were altered): nothing was written") from None
    if not hmac.compare_digest(str(manifest.get("mac", "")), _mac(mac_key, manifest)):
        raise BackupError(f"{MANIFEST} was altered (its mac does not match): nothing was written")
    files = (directory / FILES).read_bytes()
    for tar in (secrets, files):
        _check_tar(tar, settings.data_dir)
    running = running_parts(settings)
    if running:
        raise BackupError("the mesh is running (ports taken: " + ", ".join(running) + "): stop it, then restore")
    existing = databases(settings)
    keys_exist = settings.keys_dir.is_dir() and any(settings.keys_dir.iterdir())
    if (existing or keys_exist) and not force:
        raise BackupError(
            f"{len(existing)} store(s) and {'a' if keys_exist else 'no'} keys folder exist already: "
            "restore with --force to replace them"
        )
    private_dir(settings.data_dir)
    # Under this mesh's prefix, which may differ from the backed-up one's.
    names = [_prefix(settings) + e["database"].removeprefix(manifest["prefix"]) for e in manifest["stores"]]
    for name in set(existing) - set(names):
        _drop(settings, name)  # a store made after the backup would not agree with the restored ones
    total = len(names) + 3
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        dumps = [directory / e["file"] for e in manifest["stores"]]
        for i, name in enumerate(pool.map(lambda put: _put_store(settings, *put), zip(dumps, names, strict=True))):
            if progress:
                progress(name, i + 1, total)
    if progress:
        progress("keys", total - 3, total)
    _replace_secrets(settings, secrets)
    if progress:
        progress("files", total - 2, total)
    _untar(files, settings.data_dir)
    if progress:
        progress("verifying the audit log", total - 1, total)
    verified = verify_restored(settings, manifest)
    seconds = round(time.monotonic() - clock, 3)
    if progress:
        progress("done", total, total)
    return Outcome(directory, seconds, int(manifest["size_bytes"]), {**manifest, "verified": verified})


def _drop(settings: Settings, name: str) -> None:
    if is_postgres(settings):
        admin = create_engine(_admin_url(settings), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        (settings.data_dir / f"{name}.db{suffix}").unlink(missing_ok=True)


def _put_store(settings: Settings, file: Path, name: str) -> str:
    _drop(settings, name)
    if is_postgres(settings):
        admin = create_engine(_admin_url(settings), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        args, env = _libpq(settings, name)
        _run([_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", *args, str(file)], env)
        return name
    target = settings.data_dir / f"{name}.db"
    staging = settings.data_dir / f".{name}.{uuid.uuid4().hex}.restoring"
    try:
        create_private_file(staging)
        shutil.copyfile(file, staging)
        _sync(staging)
        os.replace(staging, target)
        _sync(settings.data_dir)
    finally:
        staging.unlink(missing_ok=True)
    return name


def _replace_secrets(settings: Settings, data: bytes) -> None:
    """The keys folder replaced whole (no key of another mesh left beside the restored ones), and the demo
    credentials."""
    staging = private_dir(settings.data_dir / f".restoring-{uuid.uuid4().hex}")
    try:
        _untar(data, staging)
        for path in [staging, *staging.rglob("*")]:
            private_dir(path) if path.is_dir() else private_file(path)
        if settings.keys_dir.exists():
            shutil.rmtree(settings.keys_dir)
        os.replace(staging / "keys", settings.keys_dir)
        for name in SECRET_FILES:
            if (staging / name).is_file():
                os.replace(staging / name, settings.data_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def verify_restored(settings: Settings, manifest: dict) -> dict:
    """The restored log verifies (against what the restored witness cosigned) and holds the manifest's checkpoint."""
    if not any(e["database"] == manifest["prefix"] + "audit" for e in manifest["stores"]):
        return {"audit_records": 0, "witnessed_size": None, "checkpoint": None}  # no part has started yet
    engine = engine_for("witness", settings, create=False)
    try:
        witnessed = WitnessStore(engine, WITNESS_NAME).latest(DEFAULT_LOG_ID)
    finally:
        engine.dispose()
    report = verify_store(settings, witnessed=[witnessed[0]] if witnessed else [])
    if not report.ok:
        first = report.problems[0] if report.problems else None
        raise BackupError(f"restored, but the audit log does not verify: {first}")
    out = {"audit_records": report.tree_size, "witnessed_size": witnessed[0].tree_size if witnessed else None}
    if manifest.get("checkpoint") is None:
        return {**out, "checkpoint": None}
    expected = Checkpoint.from_dict(manifest["checkpoint"])
    if not expected.verify(load_audit_public_key(settings.keys_dir)):
        raise BackupError("restored, but the manifest's checkpoint is not signed by the restored audit key")
    engine = engine_for("audit", settings, create=False)
    try:
        held = AuditLog(engine, None).checkpoint(expected.tree_size)
        root = AuditLog(engine, None).root(expected.tree_size) if report.tree_size >= expected.tree_size else None
    finally:
        engine.dispose()
    if held is None or held.root != expected.root or root != expected.root:
        raise BackupError(f"restored, but the audit log does not hold the manifest's checkpoint {expected.tree_size}")
    return {**out, "checkpoint": expected.tree_size}
