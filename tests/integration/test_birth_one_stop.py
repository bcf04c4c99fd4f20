"""The birth one-stop: a birth registered in the resident registry reaches the services part through the hub,
and the parent finds one notice per birth-triggered service (the childbirth grant, the baby's health insurance)
to accept with one tap — nothing to ask for, and nothing twice."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from births import register_birth
from sqlalchemy import func, select

from publicmesh.agencies import resident_registry
from publicmesh.identity import open_identity
from publicmesh.notices.schema import notices as notice_table
from publicmesh.notices.schema import with_texts
from publicmesh.protocol.members import PORTAL
from publicmesh.services.operator import publish_file
from publicmesh.services.store import applications, births, offers
from publicmesh.storage import engine_for

DEFINITIONS = Path(__file__).resolve().parents[2] / "publicmesh" / "services" / "definitions"
BIRTH_ONLY = ("childbirth-grant", "newborn-health-insurance")
KITAMI = "012084"
SIGNING_PASSWORD = "ABC123"


def test_a_birth_brings_the_parent_one_notice_per_birth_service(mesh, people):
    for service in BIRTH_ONLY:
        publish_file(mesh.settings, DEFINITIONS / f"{service}.yaml")
    r, head = resident_registry.residents.c, resident_registry.residents.alias("head").c
    # a mother whose household's head (世帯主) is a living resident: a deceased head's household is settled otherwise
    living_head = (
        select(head.pseudonym)
        .where(
            head.tenant == r.tenant,
            head.household_no == r.household_no,
            head.relation == "head",
            head.status == "resident",
        )
        .exists()
    )
    mother = people.registry(
        where=(r.relation == "spouse") & (r.sex == 2) & (r.status == "resident") & living_head, limit=3
    )[-1]
    child = mesh.enrol_newborn()
    engine = engine_for("resident-registry", mesh.settings)
    with engine.begin() as conn:
        resident_registry.register_birth(conn, KITAMI, child, mother, "蓮", "レン", "Ren", 1, dt.date.today())
    engine.dispose()

    ours = people.convert([child], "resident-registry", "services")[0]
    handled = mesh.wait_for(
        lambda: mesh.rows(
            "services", select(births.c.outcome).where(births.c.child == ours, births.c.handled_at.is_not(None))
        )
    )
    assert len(handled) == 1, "one birth, handled once"
    offered = mesh.rows(
        "services", select(offers.c.service_id, offers.c.subject, offers.c.amount_yen).where(offers.c.unit_key == ours)
    )
    assert sorted(o.service_id for o in offered) == sorted(BIRTH_ONLY), handled[0].outcome
    grant = next(o for o in offered if o.service_id == "childbirth-grant")
    household = select(r.household_no).where(r.tenant == KITAMI, r.pseudonym == mother).scalar_subquery()
    # ¥500,000 per child under one on the definition's date, 2026-12-01, in legal age (a year older on the eve
    # of the birthday: born on 2025-12-02 is one already), so a sibling born this year counts too
    babies = mesh.rows(
        "resident-registry",
        select(func.count()).where(
            r.tenant == KITAMI, r.household_no == household, r.status == "resident", r.birth_date > dt.date(2025, 12, 2)
        ),
    )[0][0]
    assert babies >= 1 and grant.amount_yen == 500_000 * babies
    # the notice is in the parent's inbox (the head of the newborn's household), keyed by the birth
    notices = mesh.rows(
        "notices",
        select(func.count())
        .select_from(notice_table)
        .where(notice_table.c.idempotency_key.in_([f"{s}:{ours}:eligible" for s in BIRTH_ONLY])),
    )
    assert notices[0][0] == 2
    # the notice goes to the head of the newborn's household (世帯主), not to the baby
    heads = [
        row.pseudonym
        for row in mesh.rows(
            "resident-registry",
            select(r.pseudonym).where(
                r.tenant == KITAMI, r.household_no == household, r.relation.in_(["head", "single"])
            ),
        )
    ]
    assert {o.subject for o in offered} == set(people.convert(heads, "resident-registry", "services"))


def _registry_person(mesh, people, card: dict) -> str:
    ref = open_identity(mesh.settings).cards.card(card["card_id"]).person_ref
    return people.numbers.convert([ref], PORTAL.pseudonym_domain, ["resident-registry"])["resident-registry"][0]


def _born_into(mesh, people, parent: str, given_name: str) -> tuple[str, int]:
    """A birth in ``parent``'s household, handled by the services part: the child's services pseudonym and the
    rise of the child allowance it brings: two months of ¥15,000, or of ¥30,000 for a third child or later
    (counting the household's children to 22 on 2026-03-31, i.e. born on or after 2004-04-02)."""
    r = resident_registry.residents.c
    household = select(r.household_no).where(r.tenant == KITAMI, r.pseudonym == parent).scalar_subquery()
    older = mesh.rows(
        "resident-registry",
        select(func.count()).where(
            r.tenant == KITAMI, r.household_no == household, r.status == "resident", r.birth_date >= dt.date(2004, 4, 2)
        ),
    )[0][0]
    child = register_birth(mesh.settings, mesh.url("numbers"), parent, given_name, "ユイ", "Yui", 2, KITAMI)
    ours = people.convert([child], "resident-registry", "services")[0]
    mesh.wait_for(
        lambda: mesh.rows(
            "services", select(births.c.outcome).where(births.c.child == ours, births.c.handled_at.is_not(None))
        )
    )
    return ours, 2 * (30_000 if older + 1 >= 3 else 15_000)


def _apply(client, offer_id: str):
    form = client.get(f"/applications/offers/{offer_id}")
    assert form.status_code == 200, form.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    done = client.post(f"/applications/offers/{offer_id}", data={"csrf": csrf, "password": SIGNING_PASSWORD})
    assert done.status_code == 303, done.text
    return form


def test_a_birth_into_a_household_receiving_the_child_allowance_revises_its_amount(mesh, people):
    """額改定: the family among the demo cards (its head is one of the first two cards) applies for the child
    allowance; a birth then brings a claim for the difference, shown with both amounts and claimed with
    one tap. A household that has not applied yet has its offer itself revised."""
    publish_file(mesh.settings, DEFINITIONS / "child-allowance.yaml")
    cards = json.loads((mesh.settings.data_dir / "demo-cards.json").read_text(encoding="utf-8"))
    # the family's head holds the household's offer; the family's cards come first, a single parent's followed by a
    # pensioner's (who may be a spouse in another household: the child is born into the head's)
    found = [
        (c, o)
        for c in cards[:2]
        if c["relation"] == "head"
        for o in mesh.rows(
            "services",
            select(offers).where(
                offers.c.service_id == "child-allowance",
                offers.c.subject
                == people.convert([_registry_person(mesh, people, c)], "resident-registry", "services")[0],
            ),
        )
    ]
    head_card, household_offer = found[0]
    head = mesh.portal_login(head_card["card_id"])
    _apply(head, household_offer.id)
    [applied] = mesh.rows("services", select(applications).where(applications.c.offer_id == household_offer.id))
    assert applied.status == "approved" and applied.amount_yen == household_offer.amount_yen

    child, rise = _born_into(mesh, people, _registry_person(mesh, people, head_card), "結衣")
    [claim] = mesh.rows(
        "services", select(offers).where(offers.c.service_id == "child-allowance", offers.c.unit_key == child)
    )
    assert claim.subject == household_offer.subject and claim.amount_yen == rise
    assert claim.form["revision"] == {"previous_yen": applied.amount_yen, "revised_yen": applied.amount_yen + rise}
    notices = mesh.rows(
        "notices", with_texts().where(notice_table.c.idempotency_key == f"child-allowance:{child}:revised")
    )
    assert [n.title_ja for n in notices] == ["児童手当の額が変わります"]
    assert f"/applications/offers/{claim.id}" in notices[0].links
    page = _apply(head, claim.id).text
    assert "児童手当（額改定）" in page and f"¥{applied.amount_yen:,}" in page and f"¥{rise:,}" in page
    [revision] = mesh.rows("services", select(applications).where(applications.c.offer_id == claim.id))
    assert revision.status == "approved" and revision.amount_yen == rise
    assert (
        mesh.rows("services", select(offers.c.amount_yen).where(offers.c.id == household_offer.id))[0][0]
        == applied.amount_yen
    )  # the signed application stays as signed

    waiting = mesh.rows(
        "services",
        select(offers)
        .where(
            offers.c.service_id == "child-allowance",
            offers.c.tenant == KITAMI,
            offers.c.id.not_in(select(applications.c.offer_id)),
            offers.c.unit_key != child,
        )
        .limit(1),
    )[0]
    parent = people.convert([waiting.subject], "services", "resident-registry")[0]
    other, rise = _born_into(mesh, people, parent, "陽葵")
    revised = mesh.rows("services", select(offers.c.amount_yen).where(offers.c.id == waiting.id))[0][0]
    assert revised == waiting.amount_yen + rise
    assert (
        mesh.rows(
            "services", select(offers).where(offers.c.service_id == "child-allowance", offers.c.unit_key == other)
        )
        == []
    )


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
