"""A returned application fixed and resubmitted (再提出), over HTTP on a running mesh: the person applies with a
typed phone number, staff return it in the console with a reason, the notice opens the resubmit page, the person
corrects the number and signs again; the application is received again, with the new signature, and is back in the
staff's queue. A forged signature, an old signature sent again, or someone else's resubmission changes nothing."""

from __future__ import annotations

import base64
import json
import re
import secrets
import time

import httpx
import pytest
from service_variants import variant
from sqlalchemy import select

from publicmesh.applications import content as signed_content
from publicmesh.applications import lifecycle
from publicmesh.applications.forms import signed_typed
from publicmesh.console.staff import totp
from publicmesh.identity import open_identity
from publicmesh.notices.schema import notices as notice_table
from publicmesh.notices.schema import with_texts
from publicmesh.protocol.client import HubError
from publicmesh.protocol.members import PORTAL
from publicmesh.services.offers import with_full_form
from publicmesh.services.operator import publish_file
from publicmesh.services.store import applications, history, offers
from publicmesh.storage import engine_for

SERVICE = "resubmit-test-benefit"
TITLE = "差戻し再提出の試験給付金"
REASON = "日中の連絡先の電話番号がつながりません。番号をご確認ください。"
FIRST_PHONE, FIXED_PHONE = "0157-00-0000", "0157-23-4567"
SIGNING_PASSWORD = "ABC123"  # the demo cards' signing password
STAFF = "resubmit-test-reviewer"


def _cards(mesh) -> list[dict]:
    return json.loads((mesh.settings.data_dir / "demo-cards.json").read_text(encoding="utf-8"))


def _our_card(mesh) -> dict:
    """The head of household test_services applies with: it taps and never locks or changes its card, and its
    household's offers of other services are told apart by title."""
    cards = _cards(mesh)
    return next(c for c in cards[4:-1] + cards if c["relation"] in ("head", "single"))


def _name(card: dict) -> str:
    return card["label"].split("（")[0]


@pytest.fixture(scope="module")
def card(mesh):
    return _our_card(mesh)


@pytest.fixture(scope="module")
def published(mesh, card, tmp_path_factory):
    """A benefit for our household only, decided by staff, whose form asks for a daytime phone number."""
    path = variant(
        tmp_path_factory.mktemp("definitions"),
        SERVICE,
        {"ja": TITLE, "en": "Resubmission test benefit"},
        names=[_name(card)],
        amount="40000",
        workflow={"automatic": False, "review_over": 10_000_000},
        typed_phone=True,
    )
    summary = publish_file(mesh.settings, path)
    assert summary.eligible >= 1, summary.as_dict()
    return summary


def _staff(mesh) -> httpx.Client:
    """A reviewer of Kitami of this module's own, logged in over HTTP with a password and a TOTP code (a code is
    good once: the demo reviewer's may just have been used by the console test)."""
    from publicmesh.console.staff import StaffDirectory

    username, password = f"{STAFF}.012084", secrets.token_urlsafe(12)
    engine = engine_for("services", mesh.settings)
    directory = StaffDirectory.open(engine, mesh.settings.keys_dir)
    directory.remove(username)
    secret = directory.create_staff("012084", username, password, {"reviewer"})
    engine.dispose()
    client = httpx.Client(base_url=mesh.url("console"), follow_redirects=False, timeout=30)
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    answer = client.post(
        "/login",
        data={
            "csrf": csrf,
            "username": username,
            "password": password,
            "totp": totp(base64.b32decode(secret + "=" * (-len(secret) % 8)), time.time()),
        },
    )
    assert answer.status_code == 303, answer.text
    return client


def _row(mesh, application_id: str) -> dict:
    engine = engine_for("services", mesh.settings)
    with engine.connect() as conn:
        row = dict(conn.execute(select(applications).where(applications.c.id == application_id)).mappings().one())
    engine.dispose()
    return row


def _history(mesh, application_id: str) -> list[tuple]:
    engine = engine_for("services", mesh.settings)
    with engine.connect() as conn:
        rows = conn.execute(
            select(history.c.status, history.c.actor, history.c.reason)
            .where(history.c.application_id == application_id)
            .order_by(history.c.id)
        ).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def _csrf(text: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', text).group(1)


@pytest.fixture(scope="module")
def returned(mesh, card, published):
    """Applied with the first phone number, then returned by a reviewer with the reason."""
    person = mesh.portal_login(card["card_id"])
    listing = person.get("/applications").text
    offer_id = re.search(rf'{TITLE}</strong>.*?href="/applications/offers/([0-9a-f]+)"', listing, re.S).group(1)
    form = person.get(f"/applications/offers/{offer_id}").text
    assert 'name="field-phone"' in form and 'type="tel"' in form  # the one field no agency holds
    blank = person.post(f"/applications/offers/{offer_id}", data={"csrf": _csrf(form), "password": SIGNING_PASSWORD})
    assert blank.status_code == 422 and "日中の連絡先" in blank.text  # required: refused before signing
    done = person.post(
        f"/applications/offers/{offer_id}",
        data={"csrf": _csrf(form), "password": SIGNING_PASSWORD, "field-phone": FIRST_PHONE},
    )
    assert done.status_code == 303, done.text
    application_id = done.headers["location"].split("done=")[1]
    staff = _staff(mesh)
    case = staff.get(f"/cases/{application_id}").text
    assert FIRST_PHONE in case  # staff see what the person typed
    sent_back = staff.post(f"/cases/{application_id}/return", data={"csrf": _csrf(case), "reason": REASON})
    assert sent_back.status_code == 303 and sent_back.headers["location"].endswith("done=returned")
    yield {"person": person, "staff": staff, "id": application_id, "row": _row(mesh, application_id)}
    person.close()
    staff.close()


def _hub_resubmit(mesh, subject: str, payload: dict):
    return mesh.client(str(PORTAL))._post(
        "/v1/query",
        {
            "provider": "GOV/digital/services",
            "dataset": "application",
            "subject": subject,
            "attributes": ["submit"],
            "purpose": "apply",
            "payload": {"action": "resubmit", **payload},
        },
    )


def _content(mesh, row: dict, phone: str) -> bytes:
    engine = engine_for("services", mesh.settings)
    with engine.connect() as conn:
        offer = with_full_form(
            conn, conn.execute(select(offers).where(offers.c.id == row["offer_id"])).mappings().one()
        )
    engine.dispose()
    return signed_content.application_content(
        offer, typed={"phone": phone}, resubmits=(row["id"], signed_content.signature_digest(row["signature"]))
    )


def test_a_forged_an_old_or_someone_elses_resubmission_changes_nothing(mesh, card, returned):
    row, application_id = returned["row"], returned["id"]
    identity = open_identity(mesh.settings)
    ours = identity.cards.card(card["card_id"])
    content = _content(mesh, row, FIXED_PHONE)
    signature = ours.sign_document(content, SIGNING_PASSWORD)
    good = {
        "content": base64.b64encode(content).decode(),
        "certificate": ours.signing_certificate_pem(),
        "signature": base64.b64encode(signature).decode(),
    }
    forged = {**good, "signature": base64.b64encode(signature[:-2] + b"\x00\x00").decode()}
    someone_else = identity.cards.card(_cards(mesh)[0]["card_id"]).person_ref
    attempts = [
        (
            ours.person_ref,
            {"application": application_id, "typed": {"phone": FIXED_PHONE}, "signed": forged},
            "signature",
        ),
        (
            ours.person_ref,
            {"application": application_id, "typed": {"phone": FIRST_PHONE}, "signed": json.loads(row["signature"])},
            "signature",
        ),  # the first application's, again
        (
            someone_else,
            {"application": application_id, "typed": {"phone": FIXED_PHONE}, "signed": good},
            "no such application",
        ),
    ]
    for subject, payload, detail in attempts:
        with pytest.raises(HubError) as refused:
            _hub_resubmit(mesh, subject, payload)
        assert refused.value.status == 422 and detail in refused.value.problem["detail"]
    assert _row(mesh, application_id) == row  # still returned, with the first signature
    assert _history(mesh, application_id)[-1] == ("returned", f"{STAFF}.012084", REASON)


def test_the_person_fixes_and_resubmits_and_staff_see_it_again(mesh, card, returned):
    person, staff, application_id = returned["person"], returned["staff"], returned["id"]
    listing = person.get("/applications").text
    line = re.search(rf'<tr id="a-{application_id}">.*?</tr>', listing, re.S).group(0)
    assert 'data-status="returned"' in line and REASON in line
    assert f'href="/applications/{application_id}/resubmit"' in line and "修正して再提出" in line

    # the returned notice is in the inbox and opens the resubmit page
    engine = engine_for("notices", mesh.settings)
    key = f"{SERVICE}:{application_id}:returned"

    def notice():
        with engine.connect() as conn:
            return conn.execute(with_texts().where(notice_table.c.idempotency_key == key)).first()

    found = mesh.wait_for(notice, 20)
    engine.dispose()
    assert json.loads(found.links) == {"open": f"/applications/{application_id}/resubmit"} and REASON in found.body_ja
    assert found.category == "application-decision"

    page = person.get(f"/applications/{application_id}/resubmit")
    assert page.status_code == 200 and REASON in page.text
    assert f'value="{FIRST_PHONE}"' in page.text  # what was typed, to correct
    assert "¥40,000" in page.text and _name(card) in page.text  # the pre-filled fields, read-only
    inputs = re.findall(r'<input (?![^>]*type="hidden")[^>]*>', page.text)
    assert sorted(re.search(r'name="([^"]+)"', i).group(1) for i in inputs) == ["field-phone", "password"]

    done = person.post(
        f"/applications/{application_id}/resubmit",
        data={"csrf": _csrf(page.text), "password": SIGNING_PASSWORD, "field-phone": FIXED_PHONE},
    )
    assert done.status_code == 303 and f"resubmitted={application_id}" in done.headers["location"]
    row = _row(mesh, application_id)
    assert row["status"] == "received" and row["reason"] is None
    assert row["signature"] != returned["row"]["signature"] and signed_typed(row["signature"]) == {"phone": FIXED_PHONE}
    content = json.loads(base64.b64decode(json.loads(row["signature"])["content"]))
    assert content["type"] == "publicmesh/resubmission" and content["application"] == application_id
    assert _history(mesh, application_id)[-1] == ("received", "resident", lifecycle.RESUBMITTED)
    assert 'data-status="received"' in person.get("/applications").text

    queue = staff.get("/queue").text
    assert f'id="a-{application_id}"' in queue
    case = staff.get(f"/cases/{application_id}").text
    assert FIXED_PHONE in case and lifecycle.RESUBMITTED in case

    again = person.post(
        f"/applications/{application_id}/resubmit",
        data={"csrf": _csrf(page.text), "password": SIGNING_PASSWORD, "field-phone": FIXED_PHONE},
    )
    assert again.status_code == 409  # no longer returned
    with pytest.raises(HubError) as refused:
        _hub_resubmit(
            mesh,
            open_identity(mesh.settings).cards.card(card["card_id"]).person_ref,
            {"application": application_id, "typed": {"phone": FIXED_PHONE}, "signed": json.loads(row["signature"])},
        )
    assert "only a returned application can be resubmitted" in refused.value.problem["detail"]
    assert _row(mesh, application_id) == row
