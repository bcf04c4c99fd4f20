"""額改定 on a phone: the family among the demo cards (its head is one of the first two cards) applies for the child
allowance; a baby is born; the head finds 「児童手当の額が変わります」 among the notices, opens it, sees the
amounts before and after and the difference, and claims it with the signing password."""

from __future__ import annotations

import re

from births import register_birth
from playwright.sync_api import expect
from service_variants import DEFINITIONS
from sqlalchemy import select

from publicmesh.identity import open_identity
from publicmesh.numbers.keys import load_or_create_master
from publicmesh.numbers.pseudonyms import PseudonymService
from publicmesh.protocol.members import PORTAL
from publicmesh.runtime.demo import AUTH_PIN, SIGNING_PASSWORD
from publicmesh.runtime.topology import part
from publicmesh.services.operator import publish_file
from publicmesh.services.store import births, offers
from publicmesh.storage import engine_for

TITLE, REVISION_TITLE, NOTICE = "児童手当", "児童手当（額改定）", "児童手当の額が変わります"


def submit(page, button) -> None:
    with page.expect_navigation():
        button.click()


def yen(text: str) -> int:
    return int(re.sub(r"[^0-9]", "", text))


def pseudonym_of(portal, card, domain: str) -> str:
    ref = open_identity(portal.settings).cards.card(card.card_id).person_ref
    return PseudonymService(load_or_create_master(portal.settings.keys_dir)).convert(
        [ref], PORTAL.pseudonym_domain, [domain]
    )[domain][0]


def head_of_family(portal):
    """The first head among the first two demo cards who holds a child allowance offer: the family comes first (its
    head, or its spouse and then its head), and a single parent's card is followed by a pensioner's."""
    engine = engine_for("services", portal.settings)
    with engine.connect() as conn:
        offered = set(conn.execute(select(offers.c.subject).where(offers.c.service_id == "child-allowance")).scalars())
    engine.dispose()
    return next(c for c in portal.cards[:2] if c.relation == "head" and pseudonym_of(portal, c, "services") in offered)


def handled(portal, page) -> str:
    """The outcome of the latest birth, once the services part has handled it."""
    engine = engine_for("services", portal.settings)
    try:
        for _ in range(60):
            with engine.connect() as conn:
                latest = conn.execute(
                    select(births.c.handled_at, births.c.outcome).order_by(births.c.received_at.desc()).limit(1)
                ).first()
            if latest is not None and latest.handled_at is not None:
                return latest.outcome
            page.wait_for_timeout(500)
    finally:
        engine.dispose()
    raise AssertionError(f"the birth was not handled in 30 s: {latest}")


def test_a_birth_revises_the_child_allowance_and_the_difference_is_claimed_on_a_phone(portal, phone, shot):
    publish_file(portal.settings, DEFINITIONS / "child-allowance.yaml")
    head = head_of_family(portal)
    page = phone()
    page.goto("/login")
    page.select_option("select#card", head.card_id)
    page.fill("#pin", AUTH_PIN)
    submit(page, page.locator("form[action='/login'] button[type=submit]"))

    page.goto("/applications")
    submit(page, page.locator("ul.offers li", has_text=TITLE).get_by_role("link"))
    page.fill("#password", SIGNING_PASSWORD)
    submit(page, page.locator("main form button[type=submit]"))
    first = re.search(r"done=([0-9a-f]+)", page.url).group(1)
    expect(page.locator(f"tr#a-{first} td.status")).to_have_attribute("data-status", "approved")
    awarded = yen(page.locator(f"tr#a-{first} td").nth(1).inner_text())

    parent = pseudonym_of(portal, head, "resident-registry")  # born into the head's household
    register_birth(
        portal.settings, part(portal.settings, "numbers").url(portal.settings), parent, "結衣", "ユイ", "Yui", 2
    )
    outcome = handled(portal, page)  # the services part's worker handles the birth within a second or two
    assert "child-allowance: revised" in outcome, outcome

    notice = page.locator("main article", has_text=NOTICE)
    page.goto("/notices")
    expect(notice).to_contain_text(f"{awarded:,}円から")
    shot(page, "revision-1-notice")
    submit(page, notice.get_by_role("link", name=NOTICE))

    expect(page.locator("main h1")).to_have_text(REVISION_TITLE)
    revision = page.locator("main dl.revision")
    expect(revision).to_contain_text("改定前の額")
    before, after, claimed = [yen(t) for t in revision.locator("dd").all_inner_texts()]
    assert before == awarded and after > before and claimed == after - before
    shot(page, "revision-2-claim")  # also checks the page fits the phone's width
    page.fill("#password", SIGNING_PASSWORD)
    submit(page, page.locator("main form button[type=submit]"))
    claim = re.search(r"done=([0-9a-f]+)", page.url).group(1)
    row = page.locator(f"tr#a-{claim}")
    expect(row).to_contain_text(REVISION_TITLE)
    expect(row.locator("td.status")).to_have_attribute("data-status", "approved")
    expect(row).to_contain_text(f"¥{claimed:,}")
    shot(page, "revision-3-claimed")
