"""Fast loading of seed rows into an agency's own tables: Arrow columns ingested by the ADBC driver (prepared
inserts in C on SQLite, binary COPY on PostgreSQL), secondary indexes built once after the rows."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    select,
    text,
)
from sqlalchemy.schema import CreateIndex

from publicmesh.storage.adbc import adbc_connection

if TYPE_CHECKING:  # Polars is imported where it is used: a part that never reads in bulk does not load it
    import polars as pl

# Most specific first: BigInteger and SmallInteger are Integers, Text is a String.
_TYPES = (
    (BigInteger, pa.int64()),
    (SmallInteger, pa.int16()),
    (Integer, pa.int32()),
    (Boolean, pa.bool_()),
    (DateTime, pa.timestamp("us", tz="UTC")),
    (Date, pa.date32()),
    (Float, pa.float64()),
    (Text, pa.string()),
    (String, pa.string()),
)


def arrow_schema(table: Table, columns: Iterable[str]) -> pa.Schema:
    """The Arrow types the table's columns are written from (the PostgreSQL driver copies them in binary)."""

    def kind(column) -> pa.DataType:
        found = next((arrow for sql, arrow in _TYPES if isinstance(column.type, sql)), None)
        if found is None:
            raise TypeError(f"{table.name}.{column.name}: no Arrow type for {column.type!r}")
        return found

    return pa.schema([pa.field(name, kind(table.c[name])) for name in columns])


def arrow_rows(table: Table, frame: pl.DataFrame) -> pa.Table:
    """A frame of seed rows as Arrow columns of the table's types (labels become text, dates stay dates)."""
    unknown = [c for c in frame.columns if c not in table.c]
    if unknown:
        raise ValueError(f"{table.name} has no columns {', '.join(unknown)}")
    data = frame.to_arrow()
    return data.cast(arrow_schema(table, data.column_names))


class Loader:
    """Appends rows to one table in batches; an empty table gets its secondary indexes after the last batch.

    On SQLite the driver's own copy of SQLite writes in this process (see sqlite_reader for why two copies must
    not have a store open at once): the engine's pooled connections are closed first, and the caller must hold
    none to the store while loading."""

    def __init__(self, engine: Engine, table: Table):
        self.engine, self.table = engine, table
        # A dialect's own SQL: SQLite's pragmas for the load, PostgreSQL's ANALYZE after it.
        self.sqlite = engine.dialect.name == "sqlite"
        with engine.begin() as conn:
            fresh = conn.execute(select(func.count()).select_from(select(table).limit(1).subquery())).scalar() == 0
            self.deferred = list(table.indexes) if fresh else []
            for index in self.deferred:
                conn.execute(text(f'DROP INDEX IF EXISTS "{index.name}"'))
        if self.sqlite:
            engine.dispose()  # the driver's own SQLite opens the file here: sqlite3 lets go of it first
        self._adbc = contextlib.ExitStack()
        self.conn = self._adbc.enter_context(adbc_connection(engine, autocommit=False))
        if self.sqlite:
            # The secondary indexes are sorted once at the end: in memory, on both cores.
            self._run("PRAGMA busy_timeout=10000", "PRAGMA cache_size=-262144", "PRAGMA threads=2")

    def append(self, data: pa.Table) -> None:
        """One batch, committed on its own: the write-ahead log stays the size of a batch."""
        if data.num_rows:
            with self.conn.cursor() as cursor:
                cursor.adbc_ingest(self.table.name, data, mode="append")
            self.conn.commit()

    def close(self) -> None:
        """Builds the deferred indexes (also after a failed batch: the table keeps its schema)."""
        try:
            self._run(*(str(CreateIndex(index).compile(dialect=self.engine.dialect)) for index in self.deferred))
            if not self.sqlite:  # the planner learns that a tenant's rows are contiguous (heap order = insertion)
                self._run(f'ANALYZE "{self.table.name}"')
            self.conn.commit()
        finally:
            self._adbc.close()

    def _run(self, *statements: str) -> None:
        with self.conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)


@contextlib.contextmanager
def loading(engine: Engine, table: Table) -> Iterator[Loader]:
    loader = Loader(engine, table)
    try:
        yield loader
    finally:
        loader.close()
