"""Many rows from Arrow columns into one table, each backend its fastest way: a SQLite file through the bulk writer
process, PostgreSQL by COPY. ``bulk_rows_for(engine)`` is the one place the way is chosen.

Every way inserts the rows given, plus ``same``: columns every row shares, written once rather than per row; a row
whose ``key`` columns match a stored row is skipped (ON CONFLICT DO NOTHING). Each answers how many rows are new.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Column, Connection, Engine, MetaData, Table, literal, select
from sqlalchemy.dialects import postgresql

from publicmesh.storage.bulk_writer import WRITER
from publicmesh.storage.engines import bulk_cache, sqlite_path


class BulkRows(Protocol):
    """Writes Arrow rows into a table of one backend."""

    def write(
        self,
        engine: Engine,
        table: Table,
        rows: pa.Table,
        *,
        key: Sequence[str] = (),
        same: Mapping[str, object] | None = None,
        cache_kib: int | None = None,
    ) -> int:
        """The rows in one transaction of their own; how many are new. ``cache_kib``: a page cache for the
        write where the backend has one per connection (SQLite; kept by the writer for its next batch)."""
        ...

    def write_in(
        self,
        conn: Connection,
        table: Table,
        rows: pa.Table,
        *,
        key: Sequence[str] = (),
        same: Mapping[str, object] | None = None,
    ) -> int:
        """The rows in the connection's transaction (with the caller's other writes); how many are new."""
        ...


def bulk_rows_for(engine: Engine) -> BulkRows:
    """The way rows are written in bulk into the engine's store."""
    if engine.dialect.name == "postgresql":
        return POSTGRES_COPY
    if sqlite_path(engine) is not None:
        return SQLITE_WRITER
    return SQLITE_IN_PROCESS  # an in-memory SQLite: no other process can open it


def _columns(table: Table, rows: pa.Table, same: Mapping[str, object]) -> list[str]:
    """The columns written, in the table's order."""
    given = set(rows.column_names) | set(same)
    unknown = given - set(table.c.keys())
    if unknown:
        raise ValueError(f"{table.name} has no columns {', '.join(sorted(unknown))}")
    return [c.name for c in table.columns if c.name in given]


def _sqlite_statement(conn_or_engine, table: Table, rows: pa.Table, key: Sequence[str], same: Mapping) -> str:
    """INSERT of the table's columns in order: ? for the rows' own, a literal for what they share."""
    dialect = conn_or_engine.dialect
    names = _columns(table, rows, same)
    values = ", ".join(
        str(literal(same[c], table.c[c].type).compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        if c in same
        else "?"
        for c in names
    )
    conflict = f" ON CONFLICT ({', '.join(key)}) DO NOTHING" if key else ""
    return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({values}){conflict}"


def _own(table: Table, rows: pa.Table, same: Mapping) -> list[str]:
    """The columns the rows bring, in the table's order (the order of the statement's ? marks)."""
    return [c for c in _columns(table, rows, same) if c not in same]


class SqliteInProcess:
    """SQLite through the part's own connection (sqlite3's executemany): an in-memory store, or rows written in
    a caller's transaction."""

    def write(self, engine, table, rows, *, key=(), same=None, cache_kib=None) -> int:
        with engine.connect() as conn, bulk_cache(conn, cache_kib) if cache_kib else nullcontext(), conn.begin():
            return self.write_in(conn, table, rows, key=key, same=same)

    def write_in(self, conn, table, rows, *, key=(), same=None) -> int:
        same = same or {}
        if not rows.num_rows:
            return 0
        statement = _sqlite_statement(conn, table, rows, key, same)
        values = zip(*(_python(rows.column(c)) for c in _own(table, rows, same)))
        return conn.exec_driver_sql(statement, list(values)).rowcount  # sqlite3 counts the rows inserted


def _python(column: pa.ChunkedArray) -> Sequence[object]:
    """The column's values for the driver; a dictionary's values become Python objects once each, not per row."""
    column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        values = np.array([*column.dictionary.to_pylist(), None], dtype=object)
        return values[column.indices.fill_null(len(column.dictionary)).to_numpy()]
    return column.to_pylist()


class SqliteWriter(SqliteInProcess):
    """A SQLite file: the rows go to the bulk writer process (storage/bulk_writer), which binds them from the Arrow
    columns in C and commits them in one transaction; in a caller's transaction they are written in process."""

    def write(self, engine, table, rows, *, key=(), same=None, cache_kib=None) -> int:
        same = same or {}
        if not rows.num_rows:
            return 0
        own = rows.select(_own(table, rows, same))
        # The driver binds plain strings: a dictionary is decoded here, in C.
        decoded = pa.table(
            {
                name: column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column
                for name, column in zip(own.column_names, own.columns)
            }
        )
        statement = _sqlite_statement(engine, table, rows, key, same)
        return WRITER.write(str(sqlite_path(engine)), statement, decoded, cache_kib=cache_kib)


class PostgresCopy:
    """PostgreSQL: the rows as CSV (written by Arrow) COPYed into a temporary table, then one INSERT … SELECT …
    ON CONFLICT DO NOTHING, in the connection's transaction. Several times faster than executemany, and its row
    count is exact. CSV rather than the ADBC driver's binary COPY: PostgreSQL parses each text into the column's
    type (a date's ISO text, a JSON document), and psycopg copies in the transaction of the caller's other writes."""

    def write(self, engine, table, rows, *, key=(), same=None, cache_kib=None) -> int:
        with engine.begin() as conn:
            return self.write_in(conn, table, rows, key=key, same=same)

    def write_in(self, conn, table, rows, *, key=(), same=None) -> int:
        same = same or {}
        if not rows.num_rows:
            return 0
        names, own = _columns(table, rows, same), _own(table, rows, same)
        arriving = Table(f"_rows_{uuid.uuid4().hex[:12]}", MetaData(), *(Column(c, table.c[c].type) for c in own))
        text = pa.BufferOutputStream()  # a null is empty, a string quoted (so an empty string stays one)
        pa_csv.write_csv(rows.select(own), text, pa_csv.WriteOptions(include_header=False))
        with conn.connection.driver_connection.cursor() as cursor:  # the same transaction as ``conn``
            cursor.execute(
                f'CREATE TEMPORARY TABLE "{arriving.name}" ON COMMIT DROP AS '
                f"SELECT {', '.join(own)} FROM {table.name} WITH NO DATA"
            )
            with cursor.copy(f'COPY "{arriving.name}" ({", ".join(own)}) FROM STDIN (FORMAT csv)') as copy:
                copy.write(memoryview(text.getvalue()))
        chosen = select(*(literal(same[c], table.c[c].type) if c in same else arriving.c[c] for c in names))
        statement = postgresql.insert(table).from_select(names, chosen)
        if key:
            statement = statement.on_conflict_do_nothing(index_elements=list(key))
        return conn.execute(statement, execution_options=_COUNTED).rowcount


_COUNTED = {"preserve_rowcount": True}  # SQLAlchemy keeps the driver's count of an INSERT only when asked
SQLITE_IN_PROCESS = SqliteInProcess()
SQLITE_WRITER = SqliteWriter()
POSTGRES_COPY = PostgresCopy()
