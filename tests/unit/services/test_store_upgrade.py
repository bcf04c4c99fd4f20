"""A services store made before a withdrawn application stopped counting is upgraded in place when the part starts:
its rows are kept, and the unit that withdrew may apply again — once."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import MetaData, UniqueConstraint, insert, select
from sqlalchemy.exc import IntegrityError

from publicmesh.services import store

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)


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
    return dict(id=id_, service_id="s", unit_key="U" * 22, offer_id="o", subject="S" * 22, tenant="012084",
                amount_yen=100_000, status=status, channel="tap", needs_four_eyes=False, submitted_at=T0)


def test_an_earlier_store_keeps_its_rows_and_lets_a_withdrawn_unit_apply_again_once(any_engine):
    engine = any_engine
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
            "first": "withdrawn", "second": "received"}
        assert conn.execute(select(store.applications.c.amount_yen).where(store.applications.c.id == "first")) \
            .scalar() == 100_000


def test_a_new_store_is_left_as_it_is(any_engine):
    engine = any_engine
    store.metadata.create_all(engine)
    store.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(insert(store.applications).values(**application("first", "withdrawn")))
        conn.execute(insert(store.applications).values(**application("second", "received")))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(store.applications).values(**application("third", "approved")))
