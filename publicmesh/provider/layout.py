"""Clustered storage of the tables read a municipality at a time: on SQLite a table declared WITHOUT ROWID keeps a
tenant's rows together in primary-key order. A store made before that is rebuilt once, when its node starts."""

from __future__ import annotations

import sqlite3

from sqlalchemy import Engine, MetaData, Table
from sqlalchemy.schema import CreateIndex, CreateTable

from publicmesh.storage import sqlite_path


def clustered(table: Table) -> bool:
    """Whether the table is stored in primary-key order (WITHOUT ROWID) on SQLite."""
    return table.dialect_options["sqlite"]["with_rowid"] is False


def upgrade(engine: Engine, metadata: MetaData) -> list[str]:
    """Rebuild every clustered table of the store that an earlier version made with rowids; returns their names."""
    path = sqlite_path(engine)
    if path is None:  # WITHOUT ROWID is SQLite's: PostgreSQL keeps a heap either way
        return []
    tables = [t for t in metadata.sorted_tables if clustered(t)]
    if not tables:
        return []
    db = sqlite3.connect(path, isolation_level=None)  # explicit BEGIN: the DDL is one transaction
    try:
        db.execute("PRAGMA busy_timeout=60000")
        if not any(_has_rowid(db, t.name) for t in tables):
            return []
        db.execute("BEGIN IMMEDIATE")  # another process may be upgrading the same store: decide under the lock
        try:
            rebuilt = [t.name for t in tables if _has_rowid(db, t.name)]
            for table in tables:
                if table.name in rebuilt:
                    _rebuild(db, engine, table)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return rebuilt
    finally:
        db.close()


def _has_rowid(db: sqlite3.Connection, name: str) -> bool:
    row = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
    return row is not None and "WITHOUT ROWID" not in row[0].upper()


def _rebuild(db: sqlite3.Connection, engine: Engine, table: Table) -> None:
    """Copy the rows into the table as now declared, in primary-key order, and make its indexes again."""
    old = f"_{table.name}_with_rowid"
    present = {row[1] for row in db.execute(f'PRAGMA table_info("{table.name}")')}
    columns = ", ".join(f'"{c.name}"' for c in table.columns if c.name in present)
    order = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
    # Index names are global in SQLite and follow a renamed table: drop them so the new table can have them.
    for (index,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (table.name,)
    ).fetchall():
        db.execute(f'DROP INDEX "{index}"')
    db.execute(f'ALTER TABLE "{table.name}" RENAME TO "{old}"')
    db.execute(str(CreateTable(table).compile(dialect=engine.dialect)))
    db.execute(f'INSERT INTO "{table.name}" ({columns}) SELECT {columns} FROM "{old}" ORDER BY {order}')
    db.execute(f'DROP TABLE "{old}"')
    for index in table.indexes:
        db.execute(str(CreateIndex(index).compile(dialect=engine.dialect)))
