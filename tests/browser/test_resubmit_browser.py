"""A returned application fixed and resubmitted on a phone: the application lists the staff's reason and a
"修正して再提出" button; the resubmit page shows the reason, the pre-filled fields read-only and the typed phone
number to correct; signing again puts it back to received; the returned notice is filed under application decisions.
Then the person withdraws it, signing the withdrawal with the signing password, and the offer is open again."""

from __future__ import annotations

import re
from types import SimpleNamespace

from playwright.sync_api import expect
from service_variants import variant

from publicmesh.console import cases
from publicmesh.runtime.demo import AUTH_PIN, SIGNING_PASSWORD
from publicmesh.services.operator import publish_file
from publicmesh.storage import engine_for

SERVICE = "resubmit-browser-benefit"
TITLE = "再提出の試験給付金"
REASON = "日中の連絡先の電話番号がつながりません。"
FIRST_PHONE, FIXED_PHONE = "0157-00-0000", "0157-23-4567"
# A head of household (offers go to heads); cards the other tests only log in with or act for, 8 (the resident
# path's) last, never 5 (its test expects no account) or 4 (a wrong PIN is tried on it).
CARD_PREFERENCE = (9, 11, 10, 7, 6, 3, 2, 8)


def publish(portal, card, tmp_path) -> None:
    path = variant(
        tmp_path,
        SERVICE,
        {"ja": TITLE, "en": "Resubmission browser test benefit"},
        names=[card.name],
        amount="30000",
        workflow={"automatic": False, "review_over": 10_000_000},
        typed_phone=True,
    )
    assert publish_file(portal.settings, path).eligible >= 1


def submit(page, button) -> None:
    with page.expect_navigation():
        button.click()


def test_a_returned_application_is_fixed_and_resubmitted_on_a_phone(portal, phone, shot, tmp_path):
    card = next(portal.cards[i] for i in CARD_PREFERENCE if portal.cards[i].relation in ("head", "single"))
    publish(portal, card, tmp_path)
    page = phone()
    page.goto("/login")
    page.select_option("select#card", card.card_id)
    page.fill("#pin", AUTH_PIN)
    submit(page, page.locator("form[action='/login'] button[type=submit]"))

    page.goto("/applications")
    submit(page, page.locator("ul.offers li", has_text=TITLE).get_by_role("link"))
    page.fill("#field-phone", FIRST_PHONE)
    page.fill("#password", SIGNING_PASSWORD)
    submit(page, page.locator("main form button[type=submit]"))
    application_id = re.search(r"done=([0-9a-f]+)", page.url).group(1)

    # a reviewer returns it (the console's own tests drive that page)
    engine = engine_for("services", portal.settings)
    with engine.begin() as conn:
        cases.send_back(
            conn, "012084", application_id, SimpleNamespace(username="reviewer.012084", roles=("reviewer",)), REASON
        )
    engine.dispose()

    page.goto("/applications")
    row = page.locator(f"tr#a-{application_id}")
    expect(row.locator("td.status")).to_have_attribute("data-status", "returned")
    expect(row).to_contain_text(REASON)
    shot(page, "resubmit-1-returned")
    submit(page, row.get_by_role("link", name="修正して再提出"))

    expect(page.locator("#return-reason")).to_have_text(REASON)
    expect(page.locator("main dl.card")).to_contain_text("¥30,000")  # pre-filled, not an input
    expect(page.locator("#field-phone")).to_have_value(FIRST_PHONE)
    shot(page, "resubmit-2-form")
    page.fill("#field-phone", FIXED_PHONE)
    page.fill("#password", SIGNING_PASSWORD)
    submit(page, page.get_by_role("button", name="署名して再提出する"))
    expect(page.locator("p.ok[role=status]")).to_contain_text("再提出しました")
    expect(page.locator(f"tr#a-{application_id} td.status")).to_have_attribute("data-status", "received")
    shot(page, "resubmit-3-received")

    # the returned notice, sent by the console's periodic sender, is filed under application decisions
    notice = page.locator("main article[data-category=application-decision]", has_text=REASON)
    for _ in range(30):
        page.goto("/notices?category=application-decision")
        if notice.count():
            break
        page.wait_for_timeout(1000)
    expect(notice).to_be_visible()
    expect(page.locator("nav.filters a[aria-current=page]")).to_have_text("申請の結果")
    shot(page, "notices-decisions")

    # withdrawing (取下げ) is signed too, from the application's own link
    page.goto("/applications")
    submit(page, page.locator(f"tr#a-{application_id}").get_by_role("link", name="取り下げる"))
    expect(page.locator("main h1")).to_have_text("取り下げる")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    shot(page, "withdraw-1-confirm")
    page.fill("#password", SIGNING_PASSWORD)
    submit(page, page.get_by_role("button", name="署名して取り下げる"))
    expect(page.locator("p.ok[role=status]")).to_contain_text("取り下げました")
    expect(page.locator(f"tr#a-{application_id} td.status")).to_have_attribute("data-status", "withdrawn")
    expect(page.locator(f"tr#a-{application_id}").get_by_role("link", name="取り下げる")).to_have_count(0)
    expect(page.locator("ul.offers li", has_text=TITLE)).to_have_count(1)  # open again, to apply anew
    shot(page, "withdraw-2-withdrawn")
