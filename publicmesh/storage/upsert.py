"""Row writes that differ between the backends in SQL only: INSERT … ON CONFLICT, and rows bound by the driver."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

# Both dialects' Insert have on_conflict_do_nothing/do_update and excluded, with the same signatures.
_INSERTS: dict[str, Callable[[Table], Any]] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_COUNTED = {"preserve_rowcount": True}  # SQLAlchemy keeps the driver's count of an INSERT only when asked


def upsert(
    conn: Connection,
    table: Table,
    rows: Mapping[str, object] | Sequence[Mapping[str, object]],
    key: Sequence[str],
    update: Sequence[str] | Mapping[str, object] | None = None,
) -> int:
    """Inserts the rows; a row whose ``key`` columns match a stored row instead updates that row's ``update``
    columns (names: to the row's values; a mapping: to those values), or, when ``update`` is None, is skipped.
    In the connection's transaction; how many rows were inserted or updated."""
    many = not isinstance(rows, Mapping)
    if many and not rows:
        return 0
    statement = _INSERTS[conn.dialect.name](table)
    if update is None:
        statement = statement.on_conflict_do_nothing(index_elements=list(key))
    else:
        values = update if isinstance(update, Mapping) else {c: statement.excluded[c] for c in update}
        statement = statement.on_conflict_do_update(index_elements=list(key), set_=values)
    if isinstance(rows, Mapping):
        return conn.execute(statement.values(**rows), execution_options=_COUNTED).rowcount
    columns = set(rows[0])
    if any(set(row) != columns for row in rows):  # one statement for all: each row names the same columns
        raise ValueError(f"rows into {table.name} name different columns")
    return conn.execute(statement, list(rows), execution_options=_COUNTED).rowcount


def insert_tuples(conn: Connection, table: Table, rows: Sequence[tuple]) -> None:
    """Rows given as tuples in the table's column order, bound by the driver itself (executemany: no SQLAlchemy
    object per row), in the connection's transaction."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"  # SQLite's sqlite3 binds ?, psycopg %s
    names = [c.name for c in table.columns]
    conn.exec_driver_sql(
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))})", rows
    )
