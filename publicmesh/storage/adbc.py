"""DBAPI connections of the ADBC drivers (Arrow in and out, in C) to a store's database."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Engine

from publicmesh.storage.engines import sqlite_path


@contextlib.contextmanager
def postgres_connection(engine: Engine, *, autocommit: bool = True) -> Iterator:
    """A DBAPI connection of the ADBC PostgreSQL driver to the engine's database."""
    import adbc_driver_postgresql.dbapi as driver  # noqa: PLC0415 - a part on SQLite never loads the driver

    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = driver.connect(url, autocommit=autocommit)
    try:
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def adbc_connection(engine: Engine, *, autocommit: bool = True) -> Iterator:
    """A DBAPI connection of the ADBC driver of the engine's backend (a SQLite file or PostgreSQL). On SQLite the
    driver's own copy of SQLite opens the file in this process: no sqlite3 connection may have it open meanwhile
    (see sqlite_reader for why)."""
    if engine.dialect.name == "postgresql":
        with postgres_connection(engine, autocommit=autocommit) as conn:
            yield conn
        return
    path = sqlite_path(engine)
    if path is None:
        raise ValueError(f"{engine.url.render_as_string()} cannot be opened through ADBC")
    import adbc_driver_sqlite.dbapi as driver  # noqa: PLC0415 - loaded only by a process that writes through it

    with contextlib.closing(driver.connect(str(path), autocommit=autocommit)) as conn:
        yield conn
