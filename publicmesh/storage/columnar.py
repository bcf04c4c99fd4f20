"""An agency store read in Arrow columns through ADBC: a whole municipality without a Python object per value.

PostgreSQL is read in this process; SQLite by a reader process of its own (see sqlite_reader for why)."""

from __future__ import annotations

import pickle
import subprocess
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine, bindparam, column, select, table
from sqlalchemy.dialects.postgresql import psycopg

from publicmesh.storage.adbc import postgres_connection
from publicmesh.storage.engines import sqlite_path
from publicmesh.storage.sqlite_reader import pipes, read_frame, start_child, write_frame

_POSTGRES_DIALECT = psycopg.dialect(paramstyle="numeric_dollar")  # the PostgreSQL driver binds $1, $2, ...
ASKED = table("_asked", column("pseudonym"))  # see read_arrow


class ColumnarReader(Protocol):
    """Reads a statement's answer into Arrow for one backend, by a connection of its own (committed rows only)."""

    def read(self, engine: Engine, query, params: dict, asked: pa.Array | None) -> pa.Table:
        """The answer of ``query`` with ``params``; ``asked``, when given, joinable as the temporary table ASKED."""
        ...


class PostgresReader:
    """PostgreSQL, read in this process by the ADBC driver."""

    def read(self, engine: Engine, query, params: dict, asked: pa.Array | None) -> pa.Table:
        sql, bound = _compiled(query, params, _POSTGRES_DIALECT)
        return _read_postgres(engine, sql, bound, asked)


class SqliteProcessReader:
    """A SQLite file, read by the part's reader processes (READER)."""

    def read(self, engine: Engine, query, params: dict, asked: pa.Array | None) -> pa.Table:
        sql, bound = _compiled(query, params, engine.dialect)
        return READER.read(str(sqlite_path(engine)), sql, bound, asked)


POSTGRES_READER = PostgresReader()
SQLITE_READER = SqliteProcessReader()


def _compiled(query, params: dict, dialect) -> tuple[str, tuple]:
    compiled = query.compile(dialect=dialect)
    values = compiled.construct_params(params)
    return str(compiled), tuple(values[name] for name in compiled.positiontup or ())


def columnar_reader_for(engine: Engine) -> ColumnarReader | None:
    """How the engine's store is read into Arrow; None for a store ADBC cannot open (a SQLite in memory)."""
    if engine.dialect.name == "postgresql":
        return POSTGRES_READER
    return SQLITE_READER if sqlite_path(engine) is not None else None


def supports(engine: Engine) -> bool:
    """Whether the store can be read through ADBC (a SQLite file or PostgreSQL; not an in-memory SQLite)."""
    return columnar_reader_for(engine) is not None


def read_arrow(conn: Connection, query, params: dict, asked: Sequence[str] | pa.ChunkedArray | None = None) -> pa.Table:
    """A statement's answer as one Arrow table, read by a connection of its own to the same database (committed
    rows only). Types are the driver's: SQLite gives dates as ISO text and booleans as 0/1. ``asked``: pseudonyms
    the statement may join as the temporary table ASKED (once each, sorted: the lookups go through the key in
    order)."""
    reader = columnar_reader_for(conn.engine)
    if reader is None:
        raise ValueError(f"{conn.engine.url.render_as_string()} cannot be read through ADBC")
    names = (
        None
        if asked is None
        else (
            asked.combine_chunks().cast(pa.string())
            if isinstance(asked, pa.ChunkedArray)
            else pa.array(asked, pa.string())
        )
    )
    found = reader.read(conn.engine, query, params, names)
    return found.replace_schema_metadata(None).cast(pa.schema([f.remove_metadata() for f in found.schema]))


def _read_postgres(engine: Engine, sql: str, bound: tuple, asked: pa.Array | None) -> pa.Table:
    with postgres_connection(engine) as conn, conn.cursor() as cursor:
        if asked is not None:
            values = pc.unique(asked)
            cursor.adbc_ingest(
                ASKED.name, pa.table({"pseudonym": values.take(pc.sort_indices(values))}), mode="create", temporary=True
            )
            cursor.execute(f"ANALYZE {ASKED.name}")  # the planner learns the list is short next to the table
        cursor.execute(sql, bound or None)
        return cursor.fetch_arrow_table()


class SqliteReader:
    """The client of one reader process (started on first use, again if it died); one request at a time."""

    def __init__(self):
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the process now (a node does at start-up, so its first scan does not wait for the imports)."""
        with self._lock:
            self._started()

    def read(self, path: str, sql: str, params: tuple, asked: pa.Array | None) -> pa.Table:
        request = pickle.dumps((path, sql, params, asked, ASKED.name), protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            process = self._started()
            try:
                stdin, stdout = pipes(process)
                write_frame(stdin, request)
                answer = read_frame(stdout)
            except (BrokenPipeError, EOFError):
                answer = None
            if answer is None:
                self._process = None
                raise RuntimeError(f"the SQLite reader process ended (exit status {process.poll()})")
            if answer[:2] == b"fd":  # mapped while the reader still holds the file (until the next request)
                shared = pa.memory_map(f"/proc/{process.pid}/fd/{int(answer[2:])}")
                return pa.ipc.open_stream(shared).read_all()  # in the mapping: let go with the table
        if answer[:2] != b"ok":
            raise RuntimeError(f"reading {path}: {answer[2:].decode()}")
        return pa.ipc.open_stream(pa.py_buffer(answer)[2:]).read_all()

    def _started(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            self._process = start_child("publicmesh.storage.sqlite_reader")
        return self._process

    def close(self) -> None:
        with self._lock:
            if self._process is not None:
                pipes(self._process)[0].close()
                self._process.wait(timeout=10)
                self._process = None


class SqliteReaders:
    """A few reader processes for one part, each reading one statement at a time: a list asked while a scan is
    read (a municipality's names for its forms while the next municipality is scanned) does not wait for it. The
    first is used whenever it is free; another is started only when a read comes while all started are busy."""

    def __init__(self, size: int = 2):
        self.readers = [SqliteReader() for _ in range(size)]
        self._free = set(range(size))  # the readers not reading now, by their place in ``readers``
        self._changed = threading.Condition()

    def start(self) -> None:
        self.readers[0].start()

    def read(self, path: str, sql: str, params: tuple, asked: pa.Array | None) -> pa.Table:
        with self._changed:
            self._changed.wait_for(lambda: self._free)
            taken = min(self._free)  # the first free one: the others start only when it is busy
            self._free.remove(taken)
        try:
            return self.readers[taken].read(path, sql, params, asked)
        finally:
            with self._changed:
                self._free.add(taken)
                self._changed.notify()

    def close(self) -> None:
        for reader in self.readers:
            reader.close()


READER = SqliteReaders()


class _Gathering:
    def __init__(self, columns: list[str]):
        self.columns = list(columns)
        self.rows: Future = Future()


class TenantScans:
    """Scans of one table's rows of one tenant asked at the same moment read those rows once, with every column any
    of them reads: a municipality's person and household scans reach the registry together (the hub asks both at
    once), and most of a scan's cost is per row read. The first waits ``gather_s`` (Settings.scan_gather_s) for the
    others. Owned by whoever reads (a node's provider.reads.StoreReads); nothing is kept once a gathering is read."""

    def __init__(self, gather_s: float):
        self.gather_s = gather_s
        self._lock = threading.Lock()
        self._open: dict[tuple, _Gathering] = {}

    def read(self, conn: Connection, source, tenant_column: str, tenant: str, columns: Sequence[str]) -> pa.Table:
        """The columns (named as in ``source``, a SQLAlchemy table) of the tenant's rows, in the table's order."""
        key = (conn.engine.url.render_as_string(), source.name, tenant)
        with self._lock:
            found = self._open.get(key)  # (open while it is here: its reader takes it out before reading)
            first = found is None
            if found is None:
                gathering = self._open[key] = _Gathering(list(columns))
            else:
                gathering = found
                gathering.columns += [c for c in columns if c not in gathering.columns]
        if not first:
            return gathering.rows.result().select(list(columns))
        time.sleep(self.gather_s)
        with self._lock:
            del self._open[key]
        query = select(*(source.c[c] for c in gathering.columns)).where(source.c[tenant_column] == bindparam("tenant"))
        try:
            rows = read_arrow(conn, query, {"tenant": tenant})
        except BaseException as exc:
            gathering.rows.set_exception(exc)
            raise
        gathering.rows.set_result(rows)
        return rows.select(list(columns))
