"""A notice's texts: found per notice in dictionary-encoded columns, stored once whoever sends them."""

from __future__ import annotations

import pyarrow as pa
import pytest
from sqlalchemy import func, select

from publicmesh.notices import inbox, send, send_table
from publicmesh.notices.model import text_id
from publicmesh.notices.schema import notice_texts
from publicmesh.notices.texts import texts_of
from publicmesh.protocol import notices_wire
from tests.unit.notices.test_notices import KITAMI, T0, draft, ref
from tests.unit.notices.test_send_table import notices


def test_each_notice_gets_the_id_of_its_own_combination_of_texts():
    # The titles and the bodies vary independently: 2 × 3 values, 4 combinations used.
    titles, bodies = ["お知らせA", "お知らせB"], ["本文1", "本文2", "本文3"]
    shown = [(0, 0), (0, 1), (1, 0), (0, 1), (1, 2), (1, 2), (0, 0)]
    table = notices_wire.checked(
        notices(
            len(shown),
            **{
                "title_ja": [titles[t] for t, _ in shown],
                "title_en": ["A"] * len(shown),
                "body_ja": [bodies[b] for _, b in shown],
                "body_en": [f"body {b}" for _, b in shown],
            },
        )
    )
    ids, texts = texts_of(table)
    expected = [text_id((titles[t], "A", bodies[b], f"body {b}")) for t, b in shown]
    assert ids.to_pylist() == expected
    assert len(ids.dictionary) == 4 and texts == {
        text_id(v): v for v in {(titles[t], "A", bodies[b], f"body {b}") for t, b in shown}
    }


@pytest.mark.storage
def test_a_text_is_stored_once_for_every_notice_and_sender_that_shows_it(engine):
    amounts = [10_000, 20_000, 10_000, 30_000, 20_000, 10_000]
    batch = notices(6, body_ja=[f"{a:,}円" for a in amounts], body_en=[f"{a:,} yen" for a in amounts])
    assert send_table(engine, KITAMI, notices_wire.checked(batch), now=T0) == 6
    again = batch.set_column(1, "key", pa.array([f"next:{i}" for i in range(6)]))
    assert send_table(engine, "GOV/digital/services", notices_wire.checked(again), now=T0) == 6
    sent = send(
        engine,
        draft(
            person_ref=ref(0),
            key="one",
            title_ja=batch["title_ja"][0].as_py(),
            title_en=batch["title_en"][0].as_py(),
            body_ja="10,000円",
            body_en="10,000 yen",
        ),
    )
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(notice_texts)).scalar() == 3
    assert [n.body_ja for n in inbox(engine, ref(3))] == ["30,000円", "30,000円"]
    assert sent.body_en == "10,000 yen" and sent.title_ja == "児童手当を受け取れます"
    assert {n.body_ja for n in inbox(engine, ref(0))} == {"10,000円"} and len(inbox(engine, ref(0))) == 3


def test_texts_that_differ_anywhere_have_different_ids():
    texts = ("題", "Title", "本文", "Body")
    moved = ("題", "Title", "本文Body", "")  # the same characters, split between the fields otherwise
    assert len({text_id(texts), text_id(("題", "Title", "本文", "Body.")), text_id(moved)}) == 3
