"""The bulk writer process: a statement executed for Arrow rows in one transaction, by a process of its own that
reports the driver's errors and is started again after dying."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pyarrow as pa
import pytest

from publicmesh.storage.bulk_writer import WRITER

INSERT = "INSERT INTO t (a, b) VALUES (?, ?)"


def rows(**values) -> pa.Table:
    return pa.table({"a": list(values), "b": list(values.values())})


def test_the_writer_writes_all_rows_or_none_and_starts_again_after_dying(tmp_path):
    path = str(tmp_path / "store.db")
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (a TEXT PRIMARY KEY, b INTEGER)")
    assert WRITER.write(path, INSERT, rows(x=1, y=2)) == 2
    assert WRITER.write(path, INSERT + " ON CONFLICT (a) DO NOTHING", rows(x=3, z=4)) == 1  # only what is new
    with pytest.raises(RuntimeError, match="UNIQUE constraint failed"):
        WRITER.write(path, INSERT, rows(w=5, x=6))
    dead = WRITER._process
    dead.kill()
    dead.wait()
    assert WRITER.write(path, INSERT, rows(v=7)) == 1
    assert WRITER._process is not dead
    with closing(sqlite3.connect(path)) as db:  # w went with the failed statement's x
        assert sorted(db.execute("SELECT a, b FROM t")) == [("v", 7), ("x", 1), ("y", 2), ("z", 4)]
