"""The storage seam's contract: every backend (SQLite always, PostgreSQL with PUBLICMESH_TEST_DATABASE_URL) answers
the same through the same functions: engines and stores, schema_once, upsert, bulk rows, columnar reads."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pytest
from backends import store_name as unique_store_name
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    func,
    inspect,
    select,
)
from sqlalchemy.exc import IntegrityError

from publicmesh.storage import (
    drop_store,
    engine_for,
    insert_tuples,
    lock_for_schema_change,
    schema_once,
    sqlite_path,
    upsert,
)
from publicmesh.storage.bulk import POSTGRES_COPY, SQLITE_IN_PROCESS, SQLITE_WRITER, bulk_rows_for
from publicmesh.storage.columnar import ASKED, POSTGRES_READER, SQLITE_READER, columnar_reader_for, read_arrow

pytestmark = pytest.mark.storage

metadata = MetaData()
people = Table(
    "contract_people",
    metadata,
    Column("ref", String(22), primary_key=True),
    Column("tenant", String(6), nullable=False),
    Column("name", Text, nullable=False),
    Column("age", Integer),
    Column("amount", BigInteger, nullable=False, server_default="0"),
    Column("note", Text),
    Column("seen_at", DateTime(timezone=True)),
)
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(engine):
    """The test's empty store with the contract's table."""
    metadata.create_all(engine)
    return engine


def stored(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(people).order_by(people.c.ref))]


def person(ref: str, **values) -> dict:
    return {"ref": ref, "tenant": "012084", "name": f"name {ref}", "age": 30, "amount": 0, **values}


# --- engines and stores -----------------------------------------------------------------------------------------


def test_engine_for_makes_the_store_and_drop_store_removes_it(settings):
    name = unique_store_name(settings, "contract-drop")
    engine = engine_for(name, settings)
    metadata.create_all(engine)
    assert "contract_people" in inspect(engine).get_table_names()
    engine.dispose()
    if not settings.database_url:
        assert (settings.data_dir / "publicmesh_contract_drop.db").exists()
    drop_store(name, settings)
    if not settings.database_url:
        assert not (settings.data_dir / "publicmesh_contract_drop.db").exists()
    again = engine_for(name, settings)  # made again, empty
    try:
        assert inspect(again).get_table_names() == []
    finally:
        again.dispose()
        drop_store(name, settings)


def test_each_store_is_its_own(settings):
    first, second = (unique_store_name(settings, n) for n in ("contract-a", "contract-b"))
    a, b = engine_for(first, settings), engine_for(second, settings)
    try:
        metadata.create_all(a)
        assert "contract_people" not in inspect(b).get_table_names()
    finally:
        for name, engine in ((first, a), (second, b)):
            engine.dispose()
            drop_store(name, settings)


def test_schema_once_creates_and_upgrades_once_per_engine_under_a_race(engine):
    upgrades = []
    ensure = schema_once(metadata, upgrade=lambda conn: upgrades.append(conn.dialect.name))
    start = threading.Barrier(4)

    def ensure_at_once():
        start.wait()
        return ensure(engine)

    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(lambda _: ensure_at_once(), range(4))) == {engine}
    assert ensure(engine) is engine
    assert upgrades == [engine.dialect.name]
    assert "contract_people" in inspect(engine).get_table_names()


# --- upsert -----------------------------------------------------------------------------------------------------


def test_upsert_inserts_a_row_and_many(store):
    with store.begin() as conn:
        assert upsert(conn, people, person("a"), ["ref"]) == 1
        assert upsert(conn, people, [person("b", note=None), person("c", note="")], ["ref"]) == 2
        assert upsert(conn, people, [], ["ref"]) == 0
        with pytest.raises(ValueError, match="different columns"):  # no column of a row is silently left out
            upsert(conn, people, [person("d"), person("e", note="")], ["ref"])
    assert [(r[0], r[5]) for r in stored(store)] == [("a", None), ("b", None), ("c", "")]


def test_upsert_on_conflict_does_nothing_without_update_columns(store):
    with store.begin() as conn:
        upsert(conn, people, person("a", age=30), ["ref"])
    with store.begin() as conn:
        assert upsert(conn, people, person("a", age=99, name="changed"), ["ref"]) == 0
        assert upsert(conn, people, [person("a", age=99), person("b")], ["ref"]) == 1  # only the new one
        assert upsert(conn, people, [person(f"n{i}") for i in range(3000)] + [person("b")], ["ref"]) == 3000
    assert [(r[0], r[2], r[3]) for r in stored(store) if not r[0].startswith("n")] == [
        ("a", "name a", 30),
        ("b", "name b", 30),
    ]


def test_upsert_on_conflict_updates_the_named_columns_only(store):
    with store.begin() as conn:
        upsert(conn, people, person("a", age=30, note="kept"), ["ref"])
    with store.begin() as conn:
        assert upsert(conn, people, person("a", age=31, name="renamed", note="dropped"), ["ref"], ["age", "name"]) == 1
        assert upsert(conn, people, person("b", age=5), ["ref"], ["age"]) == 1  # no conflict: inserted whole
        upsert(conn, people, person("b"), ["ref"], {"note": "set by value"})
    assert [(r[0], r[2], r[3], r[5]) for r in stored(store)] == [
        ("a", "renamed", 31, "kept"),
        ("b", "name b", 5, "set by value"),
    ]


def test_upsert_is_in_the_callers_transaction(store):
    with pytest.raises(RuntimeError), store.begin() as conn:
        upsert(conn, people, person("a"), ["ref"])
        raise RuntimeError("the caller fails afterwards")
    assert stored(store) == []


def test_insert_tuples_binds_rows_in_column_order(store):
    with store.begin() as conn:
        insert_tuples(conn, people, [("t1", "012084", "一", None, 5, "", None), ("t2", "012084", "二", 2, 6, None, T0)])
    assert [r[:6] for r in stored(store)] == [("t1", "012084", "一", None, 5, ""), ("t2", "012084", "二", 2, 6, None)]


def test_a_schema_change_under_the_lock_is_the_callers_transaction(store):
    with pytest.raises(RuntimeError), store.begin() as conn:
        lock_for_schema_change(conn, people.name)
        conn.exec_driver_sql("ALTER TABLE contract_people ADD COLUMN colour TEXT")
        raise RuntimeError("the change fails afterwards")
    assert "colour" not in {c["name"] for c in inspect(store).get_columns(people.name)}


# --- bulk rows --------------------------------------------------------------------------------------------------


def test_the_bulk_writer_is_the_backends(store):
    expected = POSTGRES_COPY if store.dialect.name == "postgresql" else SQLITE_WRITER
    assert bulk_rows_for(store) is expected
    assert bulk_rows_for(create_engine("sqlite://")) is SQLITE_IN_PROCESS  # no other process can open it


def rows(refs: list[str], **columns) -> pa.Table:
    return pa.table({"ref": refs, **columns})


def test_bulk_rows_count_what_is_new_and_store_what_was_given(store):
    bulk = bulk_rows_for(store)
    same = {"tenant": "012084", "amount": 7, "seen_at": T0, "note": None}
    names = pa.array(["一郎", "", "三郎"]).dictionary_encode()  # a dictionary is written as its values
    first = rows(["r1", "r2", "r3"], name=names, age=pa.array([1, None, 3], pa.int64()))
    assert bulk.write(store, people, first, key=["ref"], same=same) == 3
    again = rows(["r3", "r4"], name=["x", "四郎"], age=[9, 4])
    assert bulk.write(store, people, again, key=["ref"], same=same) == 1  # r3 was stored: skipped
    assert bulk.write(store, people, rows([], name=pa.array([], pa.string())), key=["ref"], same=same) == 0
    found = [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in stored(store)]
    assert found == [
        ("r1", "012084", "一郎", 1, 7, None),
        ("r2", "012084", "", None, 7, None),  # an empty string stays one, a null stays null
        ("r3", "012084", "三郎", 3, 7, None),
        ("r4", "012084", "四郎", 4, 7, None),
    ]
    with store.connect() as conn:
        seen = conn.execute(select(people.c.seen_at).distinct()).scalars().all()
    assert [s.replace(tzinfo=dt.UTC) if s.tzinfo is None else s for s in seen] == [T0]


def test_bulk_rows_are_written_in_one_transaction(store):
    bulk = bulk_rows_for(store)
    bulk.write(store, people, rows(["r1"], name=["one"]), same={"tenant": "012084"})
    # Without a key a stored ref is a violation: the whole batch is refused, its new rows included.
    with pytest.raises((IntegrityError, RuntimeError)):
        bulk.write(store, people, rows(["r2", "r1", "r3"], name=["a", "b", "c"]), same={"tenant": "012084"})
    assert [r[0] for r in stored(store)] == ["r1"]


def test_bulk_rows_join_the_callers_transaction(store):
    bulk = bulk_rows_for(store)
    with pytest.raises(RuntimeError), store.begin() as conn:
        assert bulk.write_in(conn, people, rows(["r1", "r2"], name=["a", "b"]), same={"tenant": "1"}) == 2
        upsert(conn, people, person("r3"), ["ref"])
        raise RuntimeError("the caller fails afterwards")
    assert stored(store) == []
    with store.begin() as conn:
        assert bulk.write_in(conn, people, rows(["r1", "r2"], name=["a", "b"]), key=["ref"], same={"tenant": "1"}) == 2
        assert bulk.write_in(conn, people, rows(["r2", "r5"], name=["c", "d"]), key=["ref"], same={"tenant": "1"}) == 1
    assert [r[0] for r in stored(store)] == ["r1", "r2", "r5"]


def test_bulk_rows_refuse_a_column_the_table_lacks(store):
    with pytest.raises(ValueError, match="no columns"):
        bulk_rows_for(store).write(store, people, rows(["r1"], name=["a"], colour=["red"]), same={"tenant": "1"})


def test_bulk_rows_into_an_in_memory_sqlite():
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    bulk = bulk_rows_for(engine)
    assert bulk.write(engine, people, rows(["r1", "r2"], name=["a", "b"]), key=["ref"], same={"tenant": "1"}) == 2
    assert bulk.write(engine, people, rows(["r2", "r3"], name=["a", "b"]), key=["ref"], same={"tenant": "1"}) == 1
    assert [r[0] for r in stored(engine)] == ["r1", "r2", "r3"]


# --- columnar reads ---------------------------------------------------------------------------------------------


def fill(engine, count: int = 50) -> None:
    with engine.begin() as conn:
        upsert(
            conn,
            people,
            [
                person(f"p{i:03d}", tenant="012084" if i % 2 else "131016", age=None if i % 7 == 0 else i, note="")
                for i in range(count)
            ],
            ["ref"],
        )


def test_the_columnar_reader_is_the_backends(store):
    expected = POSTGRES_READER if store.dialect.name == "postgresql" else SQLITE_READER
    assert columnar_reader_for(store) is expected
    assert columnar_reader_for(create_engine("sqlite://")) is None


def test_a_columnar_read_answers_the_same_on_every_backend(store):
    fill(store)
    query = (
        select(people.c.ref, people.c.age, people.c.note, people.c.amount)
        .where(people.c.tenant == bindparam("tenant"))
        .order_by(people.c.ref)
    )
    with store.connect() as conn:
        table = read_arrow(conn, query, {"tenant": "012084"})
    assert table.column_names == ["ref", "age", "note", "amount"]
    expected = [person(f"p{i:03d}", age=None if i % 7 == 0 else i, note="") for i in range(1, 50, 2)]
    assert table.to_pylist() == [{c: p[c] for c in table.column_names} for p in expected]
    assert pa.types.is_integer(table.schema.field("age").type) and pa.types.is_string(table.schema.field("ref").type)
    assert table.schema.metadata is None  # the driver's metadata is let go


def test_a_columnar_read_joins_the_asked_once_each_in_any_order(store):
    fill(store)
    asked = ["p010", "p003", "missing", "p003", "p041"]  # unsorted, repeated, one unknown
    query = (
        select(people.c.ref, people.c.age)
        .select_from(ASKED.join(people, people.c.ref == ASKED.c.pseudonym))
        .order_by(people.c.ref)
    )
    with store.connect() as conn:
        by_list = read_arrow(conn, query, {}, asked=asked)
        by_column = read_arrow(conn, query, {}, asked=pa.chunked_array([asked[:2], asked[2:]]))
    assert by_list.to_pylist() == [{"ref": "p003", "age": 3}, {"ref": "p010", "age": 10}, {"ref": "p041", "age": 41}]
    assert by_column.equals(by_list)


def test_a_columnar_read_sees_committed_rows_only(store):
    fill(store, 4)
    query = select(func.count().label("n")).select_from(people)
    with store.connect() as writer:
        writer.begin()
        upsert(writer, people, person("uncommitted"), ["ref"])
        with store.connect() as conn:
            assert read_arrow(conn, query, {}).column("n").to_pylist() == [4]
        writer.commit()
    with store.connect() as conn:
        assert read_arrow(conn, query, {}).column("n").to_pylist() == [5]


def test_concurrent_columnar_reads_each_get_their_own_answer(store):
    fill(store, 200)
    query = select(people.c.ref).where(people.c.age >= bindparam("low")).order_by(people.c.ref)

    def read(low: int) -> list[str]:
        with store.connect() as conn:
            return read_arrow(conn, query, {"low": low}).column("ref").to_pylist()

    lows = [10 * i for i in range(12)]
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(read, lows))
    for low, answer in zip(lows, answers):
        assert answer == [f"p{i:03d}" for i in range(low, 200) if i % 7]


def test_an_in_memory_sqlite_is_not_read_in_columns():
    engine = create_engine("sqlite://")
    with engine.connect() as conn, pytest.raises(ValueError, match="cannot be read through ADBC"):
        read_arrow(conn, select(people.c.ref), {})
    assert sqlite_path(engine) is None
