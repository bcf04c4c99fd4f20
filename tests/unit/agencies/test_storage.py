"""How agency stores are read and written at population scale: the SQLite reader process, clustered tables and
the upgrade of stores made before them, seed rows spilled and written back in key order."""

from __future__ import annotations

import sqlite3

import polars as pl
import pyarrow as pa
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select

from publicmesh.agencies.resident_registry import residents
from publicmesh.provider import layout
from publicmesh.provider.datasets import answered
from publicmesh.provider.node import asked_positions
from publicmesh.runtime.spill import Spill
from publicmesh.storage.columnar import READER


def test_positions_of_the_answered_subjects_in_the_request_are_the_last_asked():
    answered = pa.chunked_array([["b", "a"], ["c"]])
    assert asked_positions(answered, ["a", "b", "c", "a"]).to_pylist() == [1, 3, 2]
    assert asked_positions(pa.chunked_array([], pa.string()), ["a"]).to_pylist() == []
    with pytest.raises(ValueError, match="not asked"):
        asked_positions(pa.chunked_array([["z"]]), ["a"])


def test_a_read_answers_the_latest_row_of_each_asked_subject_with_its_last_position_in_the_request():
    # a subject's rows together, oldest first (the key read forwards): the latest is the last
    table = pa.table({"subject": ["b", "a", "a", "c", "d"], "year": [2026, 2025, 2026, 2026, 2026]})
    grouped = answered(table, ["a", "b", "c", "a"], keyed=False, grouped=True, positions=True)
    assert grouped.to_pylist() == [
        {"subject": "b", "year": 2026, "i": 1},
        {"subject": "a", "year": 2026, "i": 3},
        {"subject": "c", "year": 2026, "i": 2},
    ]
    scattered = table.take([2, 0, 1, 3])  # a subject's rows apart (no order by age): the first read is kept
    assert answered(scattered, ["a"], keyed=False, grouped=False).to_pylist() == [{"subject": "a", "year": 2026}]
    assert answered(table, None, keyed=False, grouped=True).column("year").to_pylist() == [2026] * 4


def test_the_reader_process_reports_errors_and_starts_again_after_dying(tmp_path):
    path = tmp_path / "store.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (a TEXT, b INTEGER)")
        db.executemany("INSERT INTO t VALUES (?, ?)", [(None, i) for i in range(3000)] + [("late", 3000)])
    # A column NULL in its first thousands of rows and text later is still read, as text.
    table = READER.read(str(path), "SELECT a, b FROM t WHERE b >= ?", (0,), None)
    assert table.num_rows == 3001 and table.column("a").drop_null().to_pylist() == ["late"]
    with pytest.raises(RuntimeError, match="no such table"):
        READER.read(str(path), "SELECT * FROM missing", (), None)
    dead = READER.readers[0]._process  # the first reader reads whenever it is free
    dead.kill()
    dead.wait()
    asked = READER.read(
        str(path), "SELECT t.b FROM _asked JOIN t ON t.a = _asked.pseudonym", (), pa.array(["late", "late", "absent"])
    )
    assert asked.column("b").to_pylist() == [3000]  # once each: a subject asked twice is answered once
    assert READER.readers[0]._process is not dead


def test_a_read_while_the_first_reader_is_busy_goes_to_another(tmp_path):
    path = tmp_path / "store.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (a TEXT, b INTEGER)")
        db.executemany("INSERT INTO t VALUES (?, ?)", [(f"row {i}", i) for i in range(10)])
    first = READER.readers[0]
    first.start()
    READER._free.remove(0)  # as while it reads a long scan
    try:
        assert READER.read(str(path), "SELECT b FROM t WHERE b < ?", (3,), None).column("b").to_pylist() == [0, 1, 2]
        assert READER.readers[1]._process is not None and READER.readers[1]._process.pid != first._process.pid
    finally:
        with READER._changed:
            READER._free.add(0)
    second = READER.readers[1]._process
    second.kill()
    second.wait()
    assert READER.read(str(path), "SELECT b FROM t WHERE b = ?", (9,), None).column("b").to_pylist() == [9]
    assert READER.readers[1]._process is second  # free again, the first read it: the second was not started again


def test_an_answer_read_through_shared_memory_outlives_the_readers_next_answer(tmp_path):
    path = tmp_path / "store.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (a TEXT, b INTEGER)")
        db.executemany("INSERT INTO t VALUES (?, ?)", [(f"row {i}", i) for i in range(50_000)])
    first = READER.read(str(path), "SELECT a, b FROM t WHERE b < ?", (25_000,), None)
    second = READER.read(str(path), "SELECT a, b FROM t WHERE b >= ?", (25_000,), None)
    assert first.column("a").to_pylist() == [f"row {i}" for i in range(25_000)]  # its file was let go meanwhile
    assert second.column("b").to_pylist() == list(range(25_000, 50_000))


def _rowid_store(path, rows):
    """A store as versions before clustering made it: residents with rowids, its indexes, some rows."""
    old = MetaData()
    Table(
        "residents",
        old,
        *[
            Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable, server_default=c.server_default)
            for c in residents.columns
        ],
    )
    engine = create_engine(f"sqlite:///{path}")
    old.create_all(engine)
    with engine.begin() as conn:
        for index in residents.indexes:
            conn.exec_driver_sql(
                f'CREATE INDEX "{index.name}" ON residents ({", ".join(c.name for c in index.columns)})'
            )
        conn.execute(residents.insert(), rows)
    return engine


def test_a_store_made_before_clustering_is_rebuilt_once_with_the_same_rows(tmp_path):
    import datetime as dt

    rows = [
        dict(
            tenant=t,
            pseudonym=f"{p:022d}",
            household_no=p,
            relation="single",
            family_name="北見",
            given_name="花子",
            family_name_kana="キタミ",
            given_name_kana="ハナコ",
            family_name_romaji="Kitami",
            given_name_romaji="Hanako",
            sex=2,
            birth_date=dt.date(1990, 1, 1 + p % 28),
            status="resident",
            postal_code="0900018",
            address="北海道北見市青葉町1-1",
            residence_municipality_code=t,
            address_protected=p % 7 == 0,
        )
        for p in range(300, 0, -1)
        for t in ("131016", "012084")
    ]
    engine = _rowid_store(tmp_path / "registry.db", rows)
    with engine.connect() as conn:
        before = sorted(conn.execute(select(residents)).all())
    metadata = residents.metadata
    assert layout.upgrade(engine, metadata) == ["residents"]
    assert layout.upgrade(engine, metadata) == []  # once
    with engine.connect() as conn:
        after = conn.execute(select(residents)).all()
        sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'residents'").scalar()
        indexes = {
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'residents' AND sql IS NOT NULL"
            )
        }
        stored = [
            tuple(r)[:2] for r in conn.exec_driver_sql("SELECT tenant, pseudonym, address FROM residents NOT INDEXED")
        ]
    engine.dispose()
    assert "WITHOUT ROWID" in sql and indexes == {i.name for i in residents.indexes}
    assert sorted(after) == before
    assert stored == sorted(stored)  # a tenant's rows together, in pseudonym order


def test_spilled_rows_come_back_by_table_in_primary_key_order(tmp_path):
    metadata = MetaData()
    scoped = Table(
        "scoped",
        metadata,
        Column("tenant", String, primary_key=True),
        Column("pseudonym", String, primary_key=True),
        Column("year", Integer, primary_key=True),
    )
    national = Table("national", metadata, Column("pseudonym", String, primary_key=True), Column("n", Integer))
    import random

    rng = random.Random(5)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    names = ["".join(rng.choice(alphabet) for _ in range(22)) for _ in range(2000)]
    spill = Spill(tmp_path, ranges=7)
    for chunk in (names[:1000], names[1000:]):
        spill.add(
            "a",
            scoped,
            pl.DataFrame(
                {
                    "tenant": [rng.choice(["131016", "012084"]) for _ in chunk],
                    "pseudonym": chunk,
                    "year": [rng.choice([2025, 2026]) for _ in chunk],
                }
            ),
        )
        spill.add("b", national, pl.DataFrame({"pseudonym": chunk, "n": list(range(len(chunk)))}))
    drained = {(store, table.name): pa.concat_tables(list(parts)) for store, table, parts in spill.drain()}
    spill.close()
    assert set(drained) == {("a", "scoped"), ("b", "national")} and spill.rows == {
        ("a", "scoped"): 2000,
        ("b", "national"): 2000,
    }
    keys = [tuple(r.values()) for r in drained[("a", "scoped")].select(["tenant", "pseudonym", "year"]).to_pylist()]
    assert keys == sorted(keys) and len(keys) == 2000
    assert drained[("b", "national")].column("pseudonym").to_pylist() == sorted(names)
    assert drained[("a", "scoped")].schema.field("year").type == pa.int32()  # the table's types
    assert list(tmp_path.iterdir()) == []
