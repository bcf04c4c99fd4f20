"""A services store made by an earlier version is upgraded in place when the part starts, its rows kept: a unit that
withdrew may apply again — once; offers are indexed by unit first, and by subject only where it is not the unit."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Index, MetaData, UniqueConstraint, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from publicmesh.services import store
from publicmesh.services.offers import offered_to

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def earlier_store(engine) -> None:
    """The applications table as it was made before: one application per unit, withdrawn or not."""
    before = MetaData()
    table = store.applications.to_metadata(before)
    table.append_constraint(UniqueConstraint("service_id", "unit_key", name="one_application_per_unit"))
    for index in list(table.indexes):
        if index.name == store.one_live_application.name:
            table.indexes.discard(index)
    before.create_all(engine)


def application(id_: str, status: str) -> dict:
    return dict(
        id=id_,
        service_id="s",
        unit_key="U" * 22,
        offer_id="o",
        subject="S" * 22,
        tenant="012084",
        amount_yen=100_000,
        status=status,
        channel="tap",
        needs_four_eyes=False,
        submitted_at=T0,
    )


def test_an_earlier_store_keeps_its_rows_and_lets_a_withdrawn_unit_apply_again_once(engine):
    engine = engine
    earlier_store(engine)
    with engine.begin() as conn:
        conn.execute(insert(store.applications).values(**application("first", "withdrawn")))
    with pytest.raises(IntegrityError), engine.begin() as conn:  # as it was: the withdrawn one still counts
        conn.execute(insert(store.applications).values(**application("second", "received")))

    store.upgrade(engine)
    store.upgrade(engine)  # at every start: the second changes nothing
    with engine.begin() as conn:
        conn.execute(insert(store.applications).values(**application("second", "received")))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(store.applications).values(**application("third", "received")))
    with engine.connect() as conn:
        assert dict(conn.execute(select(store.applications.c.id, store.applications.c.status)).all()) == {
            "first": "withdrawn",
            "second": "received",
        }
        assert (
            conn.execute(select(store.applications.c.amount_yen).where(store.applications.c.id == "first")).scalar()
            == 100_000
        )


def test_a_new_store_is_left_as_it_is(engine):
    engine = engine
    store.metadata.create_all(engine)
    store.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(insert(store.applications).values(**application("first", "withdrawn")))
        conn.execute(insert(store.applications).values(**application("second", "received")))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(store.applications).values(**application("third", "approved")))


def earlier_offers(engine) -> None:
    """The offers table as it was made before: one offer per service and unit as a constraint, every subject
    indexed."""
    before = MetaData()
    table = store.offers.to_metadata(before)
    for index in list(table.indexes):
        table.indexes.discard(index)
    table.append_constraint(UniqueConstraint("service_id", "unit_key", name="one_offer_per_unit"))
    Index("ix_offers_subject", table.c.subject)
    before.create_all(engine)


def offer(id_: str, unit: str, subject: str) -> dict:
    return dict(
        id=id_,
        service_id="s",
        unit_key=unit,
        subject=subject,
        tenant="012084",
        amount_yen=100_000,
        form={"shape": "x", "values": [1], "audit_records": []},
        version=1,
        offered_at=T0,
    )


def test_an_earlier_store_keeps_its_offers_one_per_unit_and_finds_them_by_the_new_indexes(engine):
    engine = engine
    earlier_offers(engine)
    with engine.begin() as conn:
        conn.execute(insert(store.offers), [offer("own", "U" * 22, "U" * 22), offer("birth", "C" * 22, "U" * 22)])
        before = conn.execute(select(store.offers).order_by(store.offers.c.id)).all()

    store.upgrade(engine)
    store.upgrade(engine)  # at every start: the second changes nothing
    with engine.connect() as conn:
        assert conn.execute(select(store.offers).order_by(store.offers.c.id)).all() == before
        assert {r.id for r in conn.execute(offered_to("U" * 22))} == {"own", "birth"}
        found = inspect(conn)
        assert {i["name"]: i["unique"] for i in found.get_indexes("offers")} == {
            "one_offer_per_unit_and_service": True,
            "ix_offers_subject_not_unit": False,
        }
        assert found.get_unique_constraints("offers") == []
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(store.offers).values(**offer("again", "U" * 22, "U" * 22)))
