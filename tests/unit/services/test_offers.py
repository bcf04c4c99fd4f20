"""Offers as publishing stores them: the forms Polars writes as JSON text for all rows at once (their values, and
the shape every offer shares, once) are, made whole, the forms offer_form makes for one row, and they are written
once per unit on SQLite and PostgreSQL; a person finds every offer made to them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import polars as pl
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select

from publicmesh.services import offers as publish
from publicmesh.services.store import metadata, offer_shapes
from publicmesh.services.store import offers as offers_table

DEFINITIONS = Path(__file__).resolve().parents[3] / "publicmesh" / "services" / "definitions"
DOC = yaml.safe_load((DEFINITIONS / "emergency-benefit.yaml").read_text(encoding="utf-8"))
DOC["form"] = [*DOC["form"], {"name": "born", "label": {"ja": "生年月日", "en": "Born"}, "source": "person.birth_date"}]

texts = st.one_of(st.none(), st.text(max_size=12))  # any text: quotes, backslashes, control characters, kana
frames = st.lists(
    st.tuples(
        texts,
        st.one_of(st.none(), st.integers(-(2**53), 2**53)),
        st.one_of(st.none(), st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31))),
        st.one_of(st.none(), st.integers(0, 2**40)),
        st.integers(0, 2**40),
    ),
    min_size=1,
    max_size=8,
)


def frame(rows) -> pl.DataFrame:
    """decide()'s columns for the definition's form, one row per unit."""
    names = [f["name"] for f in DOC["form"] if "source" in f]
    data = {
        "subject": [f"S{i:021d}" for i in range(len(rows))],
        "household": [f"H{i:021d}" for i in range(len(rows))],
        "amount": [100_000] * len(rows),
        "person._audit": [r[3] for r in rows],
        "income._audit": [r[4] for r in rows],
    }
    for name in names:
        data[f"form.{name}"] = [r[2] if name == "born" else r[0] if name == "head_name" else r[1] for r in rows]
    schema = {
        c: (pl.Date if c == "form.born" else pl.Utf8 if c in ("subject", "household", "form.head_name") else pl.Int64)
        for c in data
    }
    return pl.DataFrame(data, schema=schema)


@settings(max_examples=60, deadline=None)
@given(frames)
def test_the_forms_of_all_rows_at_once_are_the_forms_of_each_row(rows):
    eligible = frame(rows)
    audit = [c for c in eligible.columns if c.endswith("._audit")]
    shape = publish.form_shape(DOC)
    shape_id, shared = publish.shape_record(shape)
    publish._SHAPES[shape_id] = shared
    written = eligible.select(publish.offer_forms(shape, shape_id, eligible, audit)).to_series().to_list()
    assert [publish.full_form(None, orjson.loads(w)) for w in written] == [
        publish.offer_form(shape, r, audit) for r in eligible.iter_rows(named=True)
    ]


def test_offers_are_written_once_per_unit_with_their_forms(engine):
    metadata.create_all(engine)
    eligible = frame(
        [
            ("北見 花子", 3, dt.date(1988, 4, 2), 7, 8),
            ('"引用" \\ 符', None, None, None, 9),
            ("網走,\n 一郎", -1, None, None, None),
        ]
    )  # as CSV on PostgreSQL: a comma and a line break
    audit = [c for c in eligible.columns if c.endswith("._audit")]
    fresh = publish.store_offers(engine, DOC, "012084", eligible)
    assert sorted(fresh["unit_key"]) == sorted(eligible["household"])
    assert publish.store_offers(engine, DOC, "012084", eligible).height == 0  # published again: nothing new
    publish._SHAPES.clear()  # the shape is read from the store
    with engine.connect() as conn:
        stored = {r["unit_key"]: publish.with_full_form(conn, r) for r in conn.execute(select(offers_table)).mappings()}
        assert conn.execute(select(func.count()).select_from(offer_shapes)).scalar_one() == 1
        raw = conn.execute(select(offers_table.c.form)).scalars().first()
    assert raw.keys() == {"shape", "values", "audit_records"}  # the labels and titles are stored once, not per offer
    shape = publish.form_shape(DOC)
    for row in eligible.iter_rows(named=True):
        kept = stored[row["household"]]
        assert kept["form"] == publish.offer_form(shape, row, audit) and kept["amount_yen"] == 100_000
        assert kept["subject"] == row["subject"] and kept["tenant"] == "012084" and kept["version"] == DOC["version"]
        assert abs(kept["offered_at"].replace(tzinfo=dt.UTC) - fresh["offered_at"][0]) < dt.timedelta(seconds=1)
    births = publish.store_offers(engine, DOC, "012084", eligible.head(1), unit_key="C" * 22)
    assert births["unit_key"].to_list() == ["C" * 22]


def test_a_household_first_offered_under_another_key_is_not_offered_again(engine):
    """Before the registry named heads, a household without one was keyed by its smallest member: its head row
    (the person offered) is the same, so it gets no second offer under the new key."""
    metadata.create_all(engine)
    eligible = frame([("北見 花子", 3, None, 7, 8)])
    publish.store_offers(engine, DOC, "012084", eligible)
    rekeyed = eligible.with_columns(pl.lit("K" * 22).alias("household"))
    assert publish.store_offers(engine, DOC, "012084", rekeyed).height == 0


def test_offer_ids_are_unique_and_sort_by_time():
    first, second = publish.offer_ids(1000).to_list(), publish.offer_ids(1000).to_list()
    assert len(set(first + second)) == 2000 and all(len(i) == 26 for i in first)
    assert first == sorted(first)
    if first[0][:12] != second[0][:12]:  # a later millisecond sorts after
        assert max(first) < min(second)


def test_a_changed_definition_has_a_shape_of_its_own_and_earlier_offers_keep_theirs(engine):
    metadata.create_all(engine)
    publish.store_offers(engine, DOC, "012084", frame([("北見 花子", 3, None, 7, 8)]))
    relabelled = {
        **DOC,
        "form": [{**f, "label": {"ja": f["label"]["ja"] + "（改）", "en": f["label"]["en"]}} for f in DOC["form"]],
    }
    second = frame([("網走 一郎", 1, None, 7, 8)]).with_columns(
        pl.lit("H" + "9" * 21).alias("household"), pl.lit("S" + "9" * 21).alias("subject")
    )
    publish.store_offers(engine, relabelled, "012084", second)
    publish._SHAPES.clear()
    with engine.connect() as conn:
        forms = {
            r["subject"]: publish.with_full_form(conn, r)["form"] for r in conn.execute(select(offers_table)).mappings()
        }
        assert conn.execute(select(func.count()).select_from(offer_shapes)).scalar_one() == 2
    assert forms["S" + "0" * 21]["fields"][0]["label_ja"] == DOC["form"][0]["label"]["ja"]
    assert forms["S" + "9" * 21]["fields"][0]["label_ja"] == DOC["form"][0]["label"]["ja"] + "（改）"


def test_publishing_again_offers_only_the_units_new_since(engine):
    metadata.create_all(engine)
    first = frame([("北見 花子", 3, None, 7, 8)])
    offered = publish.store_offers(engine, DOC, "012084", first)
    both = pl.concat([first, frame([("x", 1, None, 7, 8), ("網走 一郎", 2, None, 7, 8)]).tail(1)])
    again = publish.store_offers(engine, DOC, "012084", both)
    assert again["unit_key"].to_list() == ["H" + "0" * 20 + "1"]
    with engine.connect() as conn:
        stored = dict(conn.execute(select(offers_table.c.unit_key, offers_table.c.id)).all())
    assert stored == {"H" + "0" * 21: offered["id"][0], "H" + "0" * 20 + "1": again["id"][0]}


def test_a_unit_offered_by_another_municipality_is_not_offered_again(engine):
    """A household that moved keeps its key: the service is offered to it once, wherever it lives now."""
    metadata.create_all(engine)
    publish.store_offers(engine, DOC, "012084", frame([("北見 花子", 3, None, 7, 8)]))
    assert publish.store_offers(engine, DOC, "012025", frame([("北見 花子", 3, None, 7, 8)])).height == 0


def test_a_head_offered_for_their_own_household_is_not_offered_for_another_key(engine):
    """The other way round from an older key: the household was keyed by its head, and is now keyed by someone
    else (its head moved out) while the same person applies for it."""
    metadata.create_all(engine)
    publish.store_offers(
        engine,
        DOC,
        "012084",
        frame([("北見 花子", 3, None, 7, 8)]).with_columns(pl.col("subject").alias("household")),
    )
    rekeyed = frame([("北見 花子", 3, None, 7, 8)])  # household H…0, subject S…0
    assert publish.store_offers(engine, DOC, "012084", rekeyed).height == 0


def test_a_person_whose_pseudonym_is_the_unit_of_someone_elses_offer_is_still_offered(engine):
    """A birth's offer is keyed by the child and made to the parent: the child, grown up and a head, has received
    nothing."""
    metadata.create_all(engine)
    child = "S" + "0" * 21
    publish.store_offers(
        engine,
        DOC,
        "012084",
        frame([("網走 一郎", 1, None, 7, 8)]).with_columns(pl.lit("P" * 22).alias("subject")),
        unit_key=child,
    )
    grown_up = frame([("網走 次郎", 1, None, 7, 8)])  # subject S…0, household H…0
    assert publish.store_offers(engine, DOC, "012084", grown_up)["subject"].to_list() == [child]


def test_a_person_finds_the_offers_made_to_them_and_no_others(engine):
    metadata.create_all(engine)
    person, child, parent = "P" * 22, "C" * 22, "Q" * 22
    made = {
        "own": ("s", person, person),
        "for a birth": ("s", child, person),
        "someone else's": ("s", parent, parent),
        "for the person's own birth": ("t", person, parent),
    }  # (service, unit, subject)
    with engine.begin() as conn:
        conn.execute(
            insert(offers_table),
            [
                dict(
                    id=name,
                    service_id=service,
                    unit_key=unit,
                    subject=subject,
                    tenant="012084",
                    amount_yen=1,
                    form={},
                    version=1,
                    offered_at=dt.datetime(2026, 12, 1),
                )
                for name, (service, unit, subject) in made.items()
            ],
        )
        found = {r.id for r in conn.execute(publish.offered_to(person))}
        if engine.dialect.name == "sqlite":  # each part read through an index, not the whole table
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN "
                + str(publish.offered_to(person).compile(engine, compile_kwargs={"literal_binds": True}))
            ).all()
            assert [step[3] for step in plan if step[3].startswith(("SCAN", "SEARCH"))] == [
                "SEARCH offers USING INDEX one_offer_per_unit_and_service (unit_key=?)",
                "SEARCH offers USING INDEX ix_offers_subject_not_unit (subject=?)",
            ]
    assert found == {"own", "for a birth"}
