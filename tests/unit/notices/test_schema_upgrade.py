"""A store an earlier version made (its notices holding their own texts, or their keys one per sender across all
inboxes) keeps working after the upgrade at start."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    func,
    inspect,
    select,
    text,
)

from publicmesh.notices import (
    LogChannel,
    dispatch_queued,
    ensure_schema,
    get_notice,
    inbox,
    mark_read,
    send,
    send_table,
    unread_count,
)
from publicmesh.notices.schema import KEY, KEY_COLUMNS, notice_texts, notices
from publicmesh.protocol import notices_wire
from tests.unit.notices.test_notices import ALICE, BOB, KITAMI, T0, draft
from tests.unit.notices.test_send_table import notices as wire_notices

pytestmark = pytest.mark.storage

# The notices table as the earlier version made it (its last indexes, and the two it had before those).
before = MetaData()
Table(
    "notices",
    before,
    Column("id", Text, primary_key=True),
    *(
        Column(name, Text, nullable=False)
        for name in (
            "person_ref",
            "sender",
            "category",
            "title_ja",
            "title_en",
            "body_ja",
            "body_en",
            "links",
            "idempotency_key",
            "delivery",
        )
    ),
    Column("pending", Integer, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("read_at", Text),
    UniqueConstraint("sender", "idempotency_key", name="ux_notices_idempotency"),
    Index("ix_notices_inbox", "person_ref", "created_at"),
    Index("ix_notices_queued", "pending", sqlite_where=text("pending = 1"), postgresql_where=text("pending = 1")),
    Index("ix_notices_unread", "person_ref", "read_at"),
)
TEXTS = {
    "title_ja": "児童手当を受け取れます",
    "title_en": "You can receive the child allowance",
    "body_ja": "ワンタップで申請できます。",
    "body_en": "Apply with one tap.",
}
OLD_ROWS = [
    {
        "id": "0190aaaa" + "0" * 24,
        "person_ref": ALICE,
        "sender": KITAMI,
        "category": "service-eligibility",
        **TEXTS,
        "links": '{"service_id":"child-allowance"}',
        "idempotency_key": "child-allowance-2026",
        "delivery": '{"inbox":"delivered"}',
        "pending": 0,
        "created_at": "2026-11-23T09:00:00.000000Z",
        "read_at": "2026-11-23T10:00:00.000000Z",
    },
    {
        "id": "0190aaab" + "0" * 24,
        "person_ref": ALICE,
        "sender": KITAMI,
        "category": "service-eligibility",
        **TEXTS,
        "links": "{}",
        "idempotency_key": "second",
        "delivery": '{"inbox":"delivered"}',
        "pending": 0,
        "created_at": "2026-11-23T09:01:00.000000Z",
        "read_at": None,
    },
    {
        "id": "0190aaac" + "0" * 24,
        "person_ref": BOB,
        "sender": KITAMI,
        "category": "info",
        **TEXTS,
        "body_ja": "別の本文",
        "links": "{}",
        "idempotency_key": "bob",
        "delivery": '{"inbox":"delivered","email":"queued"}',
        "pending": 1,
        "created_at": "2026-11-23T09:02:00.000000Z",
        "read_at": None,
    },
]


@pytest.fixture
def old_store(empty_engine):
    before.create_all(empty_engine)
    with empty_engine.begin() as conn:
        conn.execute(before.tables["notices"].insert(), OLD_ROWS)
    return empty_engine


def test_the_old_notices_are_moved_with_their_ids_and_texts_stored_once(old_store, tmp_path):
    ensure_schema(old_store)
    with old_store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(notice_texts)).scalar() == 2
        assert conn.execute(select(func.count()).select_from(notices)).scalar() == 3
    _assert_current_layout(old_store)

    page = inbox(old_store, ALICE)
    assert [n.id for n in page] == [OLD_ROWS[1]["id"], OLD_ROWS[0]["id"]]
    assert page[1].title_ja == TEXTS["title_ja"] and page[1].links == {"service_id": "child-allowance"}
    assert page[1].read_at is not None and unread_count(old_store, ALICE) == 1
    assert mark_read(old_store, OLD_ROWS[1]["id"], ALICE, now=T0).read_at == T0
    assert get_notice(old_store, OLD_ROWS[2]["id"], BOB).body_ja == "別の本文"
    assert dispatch_queued(old_store, LogChannel(tmp_path / "outbox.jsonl")) == 1  # its nudge is still owed

    # The keys already sent stay sent; the same key to another person is now that person's own notice.
    _assert_keys_kept(old_store)


def _assert_current_layout(engine):
    assert "notices_before" not in inspect(engine).get_table_names()
    # (PostgreSQL lists the unique constraint's index among the indexes too)
    assert {i["name"] for i in inspect(engine).get_indexes("notices")} - {KEY} == {"ix_notices_queued"}
    assert [(u["name"], u["column_names"]) for u in inspect(engine).get_unique_constraints("notices")] == [
        (KEY, KEY_COLUMNS)
    ]


def _assert_keys_kept(engine):
    assert send(engine, draft(), now=T0 + timedelta(days=1)).id == OLD_ROWS[0]["id"]
    assert send(engine, draft(person_ref=BOB)).id != OLD_ROWS[0]["id"]
    again = notices_wire.checked(wire_notices(1, subject=[ALICE], key=["second"]))
    assert send_table(engine, KITAMI, again) == 0
    assert len(inbox(engine, ALICE)) == 2


# The layout of the version before this one: texts stored once, but keys one per sender and a person index.
keyed_by_sender = MetaData()
Table(
    "notices",
    keyed_by_sender,
    *(
        Column(name, Text, nullable=False)
        for name in ("id", "person_ref", "sender", "idempotency_key", "category", "text_id", "links", "delivery")
    ),
    Column("pending", Integer, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("read_at", Text),
    UniqueConstraint("sender", "idempotency_key", name="ux_notices_idempotency"),
    Index("ix_notices_person", "person_ref"),
    Index("ix_notices_queued", "pending", sqlite_where=text("pending = 1"), postgresql_where=text("pending = 1")),
)


def test_notices_keyed_by_sender_are_moved_to_keys_of_each_inbox(empty_engine, tmp_path):
    keyed_by_sender.create_all(empty_engine)
    notice_texts.create(empty_engine)
    with empty_engine.begin() as conn:
        conn.execute(notice_texts.insert(), [{"id": "t1", **TEXTS}, {"id": "t2", **TEXTS, "body_ja": "別の本文"}])
        conn.execute(
            keyed_by_sender.tables["notices"].insert(),
            [
                {k: v for k, v in row.items() if k not in TEXTS}
                | {"text_id": "t2" if row["person_ref"] == BOB else "t1"}
                for row in OLD_ROWS
            ],
        )
    ensure_schema(empty_engine)
    _assert_current_layout(empty_engine)
    assert [n.id for n in inbox(empty_engine, ALICE)] == [OLD_ROWS[1]["id"], OLD_ROWS[0]["id"]]
    assert get_notice(empty_engine, OLD_ROWS[2]["id"], BOB).body_ja == "別の本文"
    assert dispatch_queued(empty_engine, LogChannel(tmp_path / "outbox.jsonl")) == 1
    _assert_keys_kept(empty_engine)


def test_the_upgrade_runs_once(old_store):
    ensure_schema(old_store)
    mark_read(old_store, OLD_ROWS[1]["id"], ALICE, now=T0)
    later = ensure_schema(create_engine(old_store.url))  # the next start: another engine on the same store
    try:
        assert unread_count(later, ALICE) == 0 and len(inbox(later, ALICE)) == 2
    finally:
        later.dispose()
