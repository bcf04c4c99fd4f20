"""Engines for the stores: one SQLite file per store by default, one PostgreSQL database per store at scale.

Every part owns its store by name (``numbers`` owns none, ``hub``, ``audit``, ``resident-registry`` ...);
no part opens another's.
"""

from __future__ import annotations

import re
import threading
import weakref
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from publicmesh.settings import Settings, get_settings
from publicmesh.storage.private import create_private_file, private_dir, private_file


def database_name(store: str, settings: Settings | None = None) -> str:
    """The store's database name (PostgreSQL) or file stem (SQLite): the settings' prefix, then the store's name."""
    prefix = re.sub(r"[^a-z0-9_]+", "_", (settings or get_settings()).database_prefix.lower())
    return f"{prefix}_" + re.sub(r"[^a-z0-9]+", "_", store.lower()).strip("_")


def is_postgres(settings: Settings | None = None) -> bool:
    return (settings or get_settings()).database_url.startswith("postgresql")


def sqlite_path(engine: Engine) -> Path | None:
    """The file of a SQLite store (absolute), or None: PostgreSQL, or a SQLite in memory, which no other process
    (a reader, the bulk writer) can open."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    return Path(engine.url.database).resolve()


def engine_for(store: str, settings: Settings | None = None, *, create: bool = True) -> Engine:
    """The engine of one store; creates the SQLite file or the PostgreSQL database when missing."""
    settings = settings or get_settings()
    if is_postgres(settings):
        return _postgres_engine(database_name(store, settings), settings.database_url, create=create)
    private_dir(settings.data_dir)
    path = settings.data_dir / f"{database_name(store, settings)}.db"
    # SQLite gives the -wal and -shm files the database file's mode: an owner-only file made first keeps all three
    # owner-only, and the two of a store made before are tightened here.
    create_private_file(path)
    for companion in ("-wal", "-shm"):
        private_file(f"{path}{companion}")
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL + synchronous=NORMAL is durable across process death (only an OS crash may lose the last commits).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _postgres_engine(name: str, base_url: str, *, create: bool) -> Engine:
    url = make_url(base_url)
    if create:
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    return create_engine(url.set(database=name), pool_size=10, max_overflow=20, pool_pre_ping=True)


def drop_store(store: str, settings: Settings | None = None) -> None:
    """Remove a store entirely (used by ``seed --fresh`` and by tests)."""
    settings = settings or get_settings()
    if is_postgres(settings):
        url = make_url(settings.database_url)
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database_name(store, settings)}" WITH (FORCE)'))
        admin.dispose()
        return
    for suffix in ("", "-wal", "-shm"):
        path = settings.data_dir / f"{database_name(store, settings)}.db{suffix}"
        path.unlink(missing_ok=True)


def schema_once(metadata, upgrade=None):
    """``ensure_schema(engine)`` for one store's tables: created once per engine, so callers need not remember to.
    ``upgrade(connection)``, when given, then brings a store made by an earlier version up to date (idempotent).

    A second ``create_all`` absorbs the race where another process created the tables between check and create.
    """
    ready: weakref.WeakSet = weakref.WeakSet()
    lock = threading.Lock()

    def ensure_schema(engine):
        if engine in ready:
            return engine
        with lock:
            if engine not in ready:
                try:
                    metadata.create_all(engine)
                except DBAPIError:
                    metadata.create_all(engine)
                if upgrade is not None:
                    try:
                        with engine.begin() as conn:
                            upgrade(conn)
                    except DBAPIError:  # another process upgraded it meanwhile; the upgrade is idempotent
                        with engine.begin() as conn:
                            upgrade(conn)
                ready.add(engine)
        return engine

    return ensure_schema


def lock_for_schema_change(conn, table: str) -> None:
    """Takes the lock that keeps every other connection out of ``table`` until the connection's transaction ends,
    before a schema change that another process may be making at the same moment."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # the whole file; pysqlite would run DDL outside any transaction
    else:
        conn.exec_driver_sql(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')


@contextmanager
def bulk_cache(conn, kib: int = 64 * 1024):
    """On SQLite, a page cache of ``kib`` for the connection while a bulk write runs (a municipality's rows into
    indexes of random keys: with SQLite's 2 MB default nearly every insert re-reads an index page), then the
    default again, so the pooled connection gives the memory back. 64 MiB: 1,300,000 notices in five batches
    took 22.3 s with it, 21.6 s with 256 MiB (and 209 MiB more memory), 26.0 s with 16 MiB. Nothing on PostgreSQL (its shared buffers).
    Leaves the connection's transaction as it found it (outside one, the pragma's autobegun one is ended)."""
    if conn.dialect.name != "sqlite":
        yield conn
        return
    _pragma(conn, f"PRAGMA cache_size=-{int(kib)}")
    try:
        yield conn
    finally:
        _pragma(conn, "PRAGMA cache_size=-2000")


def _pragma(conn, statement: str) -> None:
    outside = not conn.in_transaction()
    conn.exec_driver_sql(statement)
    if outside:
        conn.commit()
