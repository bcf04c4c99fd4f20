"""The birth one-stop: a birth registered in the resident registry reaches the services part through the hub,
and the parent finds one notice per birth-triggered service (the childbirth grant, the baby's health insurance)
to accept with one tap — nothing to ask for, and nothing twice."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import func, select

from publicmesh.agencies import resident_registry
from publicmesh.notices.schema import notices as notice_table
from publicmesh.services.operator import publish_file
from publicmesh.services.store import births, offers
from publicmesh.storage import engine_for

DEFINITIONS = Path(__file__).resolve().parents[2] / "publicmesh" / "services" / "definitions"
BIRTH_ONLY = ("childbirth-grant", "newborn-health-insurance")
KITAMI = "012084"



def test_a_birth_brings_the_parent_one_notice_per_birth_service(mesh, people):
    for service in BIRTH_ONLY:
        publish_file(mesh.settings, DEFINITIONS / f"{service}.yaml")
    mother = people.registry(where=(resident_registry.residents.c.relation == "spouse")
                             & (resident_registry.residents.c.sex == 2)
                             & (resident_registry.residents.c.status == "resident"), limit=3)[-1]
    child = mesh.enrol_newborn()
    engine = engine_for("resident-registry", mesh.settings)
    with engine.begin() as conn:
        resident_registry.register_birth(conn, KITAMI, child, mother, "蓮", "レン", "Ren", 1, dt.date.today())
    engine.dispose()

    ours = people.convert([child], "resident-registry", "services")[0]
    handled = mesh.wait_for(lambda: mesh.rows("services", select(births.c.outcome).where(
        births.c.child == ours, births.c.handled_at.is_not(None))))
    assert len(handled) == 1, "one birth, handled once"
    offered = mesh.rows("services", select(offers.c.service_id, offers.c.subject, offers.c.amount_yen)
                      .where(offers.c.unit_key == ours))
    assert sorted(o.service_id for o in offered) == sorted(BIRTH_ONLY), handled[0].outcome
    grant = next(o for o in offered if o.service_id == "childbirth-grant")
    r = resident_registry.residents.c
    household = select(r.household_no).where(r.tenant == KITAMI, r.pseudonym == mother).scalar_subquery()
    # ¥500,000 per child under one on the definition's date, 2026-12-01, in legal age (a year older on the eve
    # of the birthday: born on 2025-12-02 is one already), so a sibling born this year counts too
    babies = mesh.rows("resident-registry", select(func.count()).where(
        r.tenant == KITAMI, r.household_no == household, r.status == "resident",
        r.birth_date > dt.date(2025, 12, 2)))[0][0]
    assert babies >= 1 and grant.amount_yen == 500_000 * babies
    # the notice is in the parent's inbox (the head of the newborn's household), keyed by the birth
    notices = mesh.rows("notices", select(func.count()).select_from(notice_table).where(
        notice_table.c.idempotency_key.in_([f"{s}:{ours}:eligible" for s in BIRTH_ONLY])))
    assert notices[0][0] == 2
    # the notice goes to the head of the newborn's household (世帯主), not to the baby
    heads = [row.pseudonym for row in mesh.rows("resident-registry", select(r.pseudonym).where(
        r.tenant == KITAMI, r.household_no == household, r.relation.in_(["head", "single"])))]
    assert {o.subject for o in offered} == set(people.convert(heads, "resident-registry", "services"))


def test_handling_a_birth_again_offers_nothing_new(mesh, people):
    from sqlalchemy import update

    from publicmesh.services.triggers import handle_births

    engine = engine_for("services", mesh.settings)
    pending = select(births.c.event_id).where(births.c.handled_at.is_(None))
    mesh.wait_for(lambda: not mesh.rows("services", pending))
    before = mesh.rows("services", select(func.count()).select_from(offers))[0][0]
    # Births that were offered services (other tests may have registered births before any birth-triggered
    # service was published: handling those now rightly offers them what is published since).
    offered = births.c.child.in_(select(offers.c.unit_key))
    with engine.begin() as conn:
        again = conn.execute(update(births).where(offered).values(handled_at=None)).rowcount
    assert again >= 1
    client = mesh.client("GOV/digital/services")
    # the services part's worker may take some of them first; either way each is handled and nothing is new
    handle_births(engine, client)
    mesh.wait_for(lambda: not mesh.rows("services", pending))
    engine.dispose()
    assert mesh.rows("services", select(func.count()).select_from(offers))[0][0] == before
