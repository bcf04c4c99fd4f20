"""額改定 on a phone: the family among the demo cards (the first two cards: its head and the spouse) applies for the
child allowance; a baby is born; the head finds 「児童手当の額が変わります」 among the notices, opens it, sees the
amounts before and after and the difference, and claims it with the signing password."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from publicmesh.identity import open_identity
from publicmesh.mesh.members import PORTAL
from publicmesh.numbers.keys import load_or_create_master
from publicmesh.numbers.pseudonyms import PseudonymService
from publicmesh.runtime.demo import AUTH_PIN, SIGNING_PASSWORD
from publicmesh.runtime.topology import part
from publicmesh.services.operator import publish_file

from births import register_birth
from service_variants import DEFINITIONS

TITLE, REVISION_TITLE, NOTICE = "児童手当", "児童手当（額改定）", "児童手当の額が変わります"


def submit(page, button) -> None:
    with page.expect_navigation():
        button.click()


def yen(text: str) -> int:
    return int(re.sub(r"[^0-9]", "", text))


def test_a_birth_revises_the_child_allowance_and_the_difference_is_claimed_on_a_phone(portal, phone, shot):
    publish_file(portal.settings, DEFINITIONS / "child-allowance.yaml")
    family = {c.relation: c for c in portal.cards[:2]}
    page = phone()
    page.goto("/login")
    page.select_option("select#card", family["head"].card_id)
    page.fill("#pin", AUTH_PIN)
    submit(page, page.locator("form[action='/login'] button[type=submit]"))

    page.goto("/applications")
    submit(page, page.locator("ul.offers li", has_text=TITLE).get_by_role("link"))
    page.fill("#password", SIGNING_PASSWORD)
    submit(page, page.locator("main form button[type=submit]"))
    first = re.search(r"done=([0-9a-f]+)", page.url).group(1)
    expect(page.locator(f"tr#a-{first} td.status")).to_have_attribute("data-status", "approved")
    awarded = yen(page.locator(f"tr#a-{first} td").nth(1).inner_text())

    mother = family.get("spouse", family["head"])
    ref = open_identity(portal.settings).cards.card(mother.card_id).person_ref
    parent = PseudonymService(load_or_create_master(portal.settings.keys_dir)).convert(
        [ref], PORTAL.pseudonym_domain, ["resident-registry"])["resident-registry"][0]
    register_birth(portal.settings, part(portal.settings, "numbers").url(portal.settings), parent,
                   "結衣", "ユイ", "Yui", 2)

    notice = page.locator("main article", has_text=NOTICE)
    for _ in range(30):  # the services part's worker handles the birth within a second or two
        page.goto("/notices")
        if notice.count():
            break
        page.wait_for_timeout(1000)
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
