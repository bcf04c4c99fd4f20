"""Fast loading of seed rows into an agency's own tables (executemany on SQLite, COPY on PostgreSQL)."""

from __future__ import annotations

import polars as pl
from sqlalchemy import Connection, Table


def load_frame(conn: Connection, table: Table, frame: pl.DataFrame) -> None:
    if frame.is_empty():
        return
    columns = [c for c in frame.columns if c in table.c]
    frame = frame.select(columns)
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        names = ", ".join(f'"{c}"' for c in columns)
        with raw.cursor().copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for row in frame.iter_rows():
                copy.write_row(row)
        return
    placeholders = ", ".join("?" for _ in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({names}) VALUES ({placeholders})', frame.rows())
