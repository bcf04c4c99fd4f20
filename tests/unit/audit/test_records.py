"""The canonical bytes of a record (the Merkle leaf data) and records made for many subjects at once."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from publicmesh.audit import ExchangeRecord, canonical_bytes, utc_timestamp

# Text as records carry it: any code point UTF-8 can encode (no lone surrogates), control characters included.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


def record(**fields) -> ExchangeRecord:
    base = dict(
        kind="bulk-item",
        at=utc_timestamp(),
        consumer="GOV/digital/services",
        provider="MUNI/012084/local-tax",
        dataset="assessment",
        attributes=("income",),
        purpose="specified-public-benefit:emergency-benefit",
        legal_basis="番号法第19条第8号",
        subject="s1",
        request_id="r1",
        outcome="ok",
    )
    return ExchangeRecord(**{**base, **fields})


@given(consumer=TEXT, subject=TEXT, attributes=st.lists(TEXT, max_size=4), position=st.integers(0, 2**62))
def test_canonical_bytes_are_the_standard_sorted_compact_utf8_json(consumer, subject, attributes, position):
    r = record(consumer=consumer, subject=subject, attributes=attributes)
    expected = json.dumps(
        {**r.as_dict(), "position": position}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert canonical_bytes(r, position) == expected


def test_the_record_a_person_sees_of_an_exchange_about_many_is_the_shared_record_with_their_subject():
    template = record(subject="")
    batch = template.for_subjects(["a", "児童", "c"])
    assert [batch.record_for(s) for s in ("a", "児童", "c")] == [
        record(at=template.at, subject=s) for s in ("a", "児童", "c")
    ]


@given(
    consumer=TEXT,
    purpose=TEXT,
    subjects=st.lists(TEXT, min_size=1, max_size=5),
    attributes=st.lists(TEXT, max_size=4),
    position=st.integers(0, 2**62),
)
def test_the_leaf_of_an_exchange_about_many_is_standard_json_of_the_shared_fields_and_the_subject_tree(
    consumer, purpose, subjects, attributes, position
):
    batch = record(consumer=consumer, purpose=purpose, attributes=attributes).for_subjects(subjects)
    shared = {k: v for k, v in batch.template.as_dict().items() if k != "subject"}
    expected = json.dumps(
        {
            **shared,
            "position": position,
            "subjects": {"count": len(set(subjects)), "root": base64.b64encode(batch.tree.root).decode()},
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    assert batch.canonical_bytes(position) == expected
    assert b'"subject":' not in expected  # never mistaken for a record about one subject


def test_records_for_many_subjects_refuse_a_subject_that_is_not_text():
    with pytest.raises(TypeError):
        record().for_subjects(["a", None])
    with pytest.raises(UnicodeEncodeError):
        record().for_subjects(["\ud800"]).tree
