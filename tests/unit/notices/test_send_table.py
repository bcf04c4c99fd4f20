"""Notices in Arrow columns: the wire's checks name the bad row, and send_table stores what send_many stores."""

from __future__ import annotations

import pyarrow as pa
import pytest

from publicmesh.notices import NoticeDraft, inbox, send_many, send_table
from publicmesh.protocol import notices_wire
from tests.unit.notices.test_notices import KITAMI, T0, ref

pytestmark = pytest.mark.storage


def notices(count: int, **columns) -> pa.Table:
    base = {
        "subject": [ref(i) for i in range(count)],
        "key": [f"ca-2026:{ref(i)}" for i in range(count)],
        "title_ja": ["児童手当を受け取れます"] * count,
        "title_en": ["You can receive the child allowance"] * count,
        "body_ja": [f"{10_000 * (i + 1):,} 円を受け取れます。" for i in range(count)],
        "body_en": [f"You can receive {10_000 * (i + 1):,} yen." for i in range(count)],
        "link": [f"/applications/offers/{i:026x}" for i in range(count)],
    }
    return pa.table({**base, **columns})


def test_a_checked_table_fills_the_category_and_keeps_the_rows():
    table = notices_wire.checked(notices(3))
    assert table.column_names == [*notices_wire.REQUIRED, *notices_wire.OPTIONAL]
    assert table.column("category").to_pylist() == ["service-eligibility"] * 3
    assert table.column("subject").to_pylist() == [ref(0), ref(1), ref(2)]


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [
        ("subject", "not-a-pseudonym", "subject is a 22-character pseudonym"),
        ("link", "//evil.example/phish", "link is a path on the portal"),
        ("link", "https://evil.example/", "link is a path on the portal"),
        ("body_ja", "あ" * 4001, "body_ja is longer than 4000 characters"),
        ("title_en", "", "a notice has an English title"),
        ("category", "lottery", "category is one of"),
        ("key", None, "key is missing"),
    ],
)
@pytest.mark.parametrize("encoded", [False, True], ids=["strings", "dictionary"])
def test_a_bad_row_is_named(column, value, rule, encoded):
    table = notices(4)
    values = table.column(column).to_pylist() if column in table.column_names else [None] * 4
    values[2] = value
    table = table.drop_columns([column]) if column in table.column_names else table
    sent = pa.array(values, pa.string())
    if encoded and column in notices_wire.TEXTS:  # checked once per distinct value, the row still named
        sent = sent.dictionary_encode()
    with pytest.raises(notices_wire.MalformedNotices, match=f"notice 2: {rule}"):
        notices_wire.checked(table.append_column(column, sent))


def test_texts_come_dictionary_encoded_however_they_were_sent():
    title = pa.DictionaryArray.from_arrays(pa.array([0, 0, 1], pa.int8()), pa.array(["お知らせ", "通知"]))
    body = pa.DictionaryArray.from_arrays(pa.array([0, 1, 0], pa.int32()), pa.array(["本文", None]))
    table = notices(3).set_column(2, "title_ja", title).set_column(4, "body_ja", body)
    with pytest.raises(notices_wire.MalformedNotices, match="notice 1: body_ja is missing"):
        notices_wire.checked(table)  # a null among the dictionary's values is a missing text
    table = notices_wire.checked(table.set_column(4, "body_ja", pa.array(["本文"] * 3)))
    assert all(pa.types.is_dictionary(table.schema.field(c).type) for c in notices_wire.TEXTS)
    assert table.column("title_ja").to_pylist() == ["お知らせ", "お知らせ", "通知"]
    assert table.column("body_ja").combine_chunks().dictionary.to_pylist() == ["本文"]


def test_unknown_or_missing_columns_and_non_streams_are_refused():
    with pytest.raises(notices_wire.MalformedNotices, match="unknown \\['html'\\]"):
        notices_wire.checked(notices(1).append_column("html", pa.array(["<b>"])))
    with pytest.raises(notices_wire.MalformedNotices, match="missing \\['body_en'\\]"):
        notices_wire.checked(notices(1).drop_columns(["body_en"]))
    with pytest.raises(notices_wire.MalformedNotices, match="not an Arrow IPC stream"):
        notices_wire.read_request(b'{"notices": []}')
    body = notices_wire.request_body(notices(3), {"provider": "GOV/digital/portal", "purpose": "p", "service": "s"})
    with pytest.raises(notices_wire.MalformedNotices, match="at most 2 notices"):
        notices_wire.read_request(body, max_rows=2)
    table, routing = notices_wire.read_request(body)
    assert table.num_rows == 3 and routing == {
        "provider": "GOV/digital/portal",
        "purpose": "p",
        "service": "s",
        "sender": "",
    }


def test_the_answer_must_have_a_flag_per_notice():
    flags, delivered = notices_wire.read_answer(notices_wire.answer_body(pa.array([True, False]), 2), 2)
    assert flags.to_pylist() == [True, False] and delivered == 2
    with pytest.raises(notices_wire.MalformedNotices, match="not 3 flags"):
        notices_wire.read_answer(notices_wire.answer_body(pa.array([True, False]), 2), 3)


def test_send_table_stores_what_send_many_stores(engine):
    table = notices_wire.checked(notices(50))
    assert send_table(engine, KITAMI, table.slice(0, 25), now=T0) == 25
    drafts = [
        NoticeDraft(
            person_ref=r["subject"],
            sender=KITAMI,
            category=r["category"],
            title_ja=r["title_ja"],
            title_en=r["title_en"],
            body_ja=r["body_ja"],
            body_en=r["body_en"],
            links={"open": r["link"]},
            idempotency_key=r["key"],
        )
        for r in table.slice(25).to_pylist()
    ]
    assert send_many(engine, drafts, now=T0) == 25
    fields = (
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
        "created_at",
        "read_at",
    )
    by_table, by_drafts = inbox(engine, ref(3))[0], inbox(engine, ref(30))[0]
    assert by_table.links == {"open": f"/applications/offers/{3:026x}"}
    assert by_table.body_ja == "40,000 円を受け取れます。" and by_table.delivery == by_drafts.delivery
    assert {f: type(getattr(by_table, f)) for f in fields} == {f: type(getattr(by_drafts, f)) for f in fields}
    assert len(by_table.id) == len(by_drafts.id) == 32 and by_table.id[:8] == by_drafts.id[:8]


def test_send_table_skips_keys_already_sent_and_gives_unique_ids(engine):
    table = notices_wire.checked(notices(1_000))
    assert send_table(engine, KITAMI, table.slice(0, 600), now=T0, chunk=250) == 600
    assert send_table(engine, KITAMI, table, now=T0, chunk=250) == 400
    assert send_table(engine, KITAMI, table, now=T0) == 0
    ids = {inbox(engine, ref(i))[0].id for i in range(0, 1_000, 7)}
    assert len(ids) == len(range(0, 1_000, 7)) and all(len(inbox(engine, ref(i))) == 1 for i in (0, 599, 600, 999))
    links = notices_wire.checked(notices(2, link=pa.array([None, "/inbox"], pa.string())))
    send_table(engine, "GOV/digital/services", links, now=T0)
    assert [n.links for n in inbox(engine, ref(0)) if n.sender == "GOV/digital/services"] == [{}]
    assert [n.links for n in inbox(engine, ref(1)) if n.sender == "GOV/digital/services"] == [{"open": "/inbox"}]
