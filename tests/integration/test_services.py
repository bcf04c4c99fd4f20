"""A service published end to end on a running mesh: offers and notices through the hub, a one-tap signed
application through the portal, no duplicates on re-publish or double submission, and a payout file."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from publicmesh import accounts
from publicmesh.applications.content import application_content
from publicmesh.bench.services import audit_per_subject
from publicmesh.identity import open_identity
from publicmesh.notices.schema import notices as notice_table
from publicmesh.notices.schema import with_texts
from publicmesh.payouts import zengin
from publicmesh.protocol.client import HubError
from publicmesh.protocol.members import PORTAL
from publicmesh.services.fetch import purpose_of
from publicmesh.services.offers import with_full_form
from publicmesh.services.operator import publish_file
from publicmesh.services.store import applications, offers
from publicmesh.storage import engine_for

DEFINITIONS = Path(__file__).resolve().parents[2] / "publicmesh" / "services" / "definitions"
SIGNING_PASSWORD = "ABC123"


@pytest.fixture(scope="module")
def published(mesh, tmp_path_factory):
    """The emergency benefit with every resident household eligible (so the demo cards' households are)."""
    doc = yaml.safe_load((DEFINITIONS / "emergency-benefit.yaml").read_text(encoding="utf-8"))
    doc["id"], doc["rules"]["eligible"] = "test-benefit", 'person.status == "resident"'
    doc["workflow"]["review_over"] = 10_000_000  # decided by the rules alone, so the payout test has approvals
    path = tmp_path_factory.mktemp("definitions") / "test-benefit.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    before = mesh.audit_size()
    summary = publish_file(mesh.settings, path)
    return {"path": path, "summary": summary, "audit_before": before, "audit_after": mesh.audit_size()}


def _count(mesh, table, **where) -> int:
    engine = engine_for("services", mesh.settings)
    with engine.connect() as conn:
        query = select(func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        n = conn.execute(query).scalar()
    engine.dispose()
    return n


def test_publishing_offers_every_eligible_household_once_and_notifies_it(mesh, published):
    summary = published["summary"]
    assert summary.eligible > 0 and summary.new_offers == summary.eligible == summary.notices
    assert _count(mesh, offers, service_id="test-benefit") == summary.eligible
    assert summary.total_yen == sum(m["total_yen"] for m in summary.by_municipality.values())
    # every person read in bulk is named by the exchange's record (person, household, income), and every person
    # notified by the notice's: each finds those records and their proofs in the portal
    audit = audit_per_subject(mesh.settings, purpose_of("test-benefit"))
    assert audit["subjects"] == summary.residents
    assert audit["subjects_named"] >= 2 * summary.residents + summary.eligible
    # per municipality: person, household and income of everyone, the names of the eligible, and the notices
    assert audit["records"] <= 5 * len(summary.by_municipality) + 2
    engine = engine_for("notices", mesh.settings)
    with engine.connect() as conn:
        sent = conn.execute(
            select(func.count()).select_from(notice_table).where(notice_table.c.idempotency_key.like("test-benefit:%"))
        ).scalar()
    assert sent == summary.eligible


def test_republishing_creates_no_duplicate_offers_or_notices(mesh, published):
    again = publish_file(mesh.settings, published["path"])
    assert again.new_offers == 0 and again.notices == 0
    assert _count(mesh, offers, service_id="test-benefit") == published["summary"].eligible


def _head_card(mesh):
    """A head of household among the cards whose signing password no other test gets wrong (test_portal_access
    tries wrong passwords on the first cards and locks the last)."""
    cards = json.loads((mesh.settings.data_dir / "demo-cards.json").read_text(encoding="utf-8"))
    return next(c for c in cards[4:-1] + cards if c["relation"] in ("head", "single"))


def test_one_tap_signed_application_and_no_second_one(mesh, published):
    card = _head_card(mesh)
    client = mesh.portal_login(card["card_id"])
    listing = client.get("/applications")
    # this card's household may hold offers of other tests' services too (the console test): take this one's
    title = yaml.safe_load((DEFINITIONS / "emergency-benefit.yaml").read_text(encoding="utf-8"))["title"]["ja"]
    found = [
        (o, client.get(f"/applications/offers/{o}"))
        for o in re.findall(r'href="/applications/offers/([0-9a-f]+)"', listing.text)
    ]
    offer_id, form = next((o, page) for o, page in found if title in page.text)
    assert form.status_code == 200 and "¥" in form.text
    typed = re.findall(r'<input (?![^>]*type="hidden")[^>]*>', form.text)
    assert [t for t in typed if 'name="password"' not in t] == []  # nothing to type but the signing password
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    done = client.post(f"/applications/offers/{offer_id}", data={"csrf": csrf, "password": SIGNING_PASSWORD})
    assert done.status_code == 303 and done.headers["location"].startswith("/applications?done=")
    assert _count(mesh, applications, offer_id=offer_id) == 1
    again = client.post(f"/applications/offers/{offer_id}", data={"csrf": csrf, "password": SIGNING_PASSWORD})
    assert again.status_code == 303  # sent twice (an answer lost): the same application, received once
    assert again.headers["location"] == done.headers["location"]
    assert _count(mesh, applications, offer_id=offer_id) == 1
    page = client.get("/applications").text
    assert "支給決定" in page or "審査中" in page


def _submit(mesh, subject: str, payload: dict):
    return (
        mesh.client(str(PORTAL)).query("GOV/digital/services", "application", subject, ["submit"], "apply")
        if payload is None
        else mesh.client(str(PORTAL))._post(
            "/v1/query",
            {
                "provider": "GOV/digital/services",
                "dataset": "application",
                "subject": subject,
                "attributes": ["submit"],
                "purpose": "apply",
                "payload": payload,
            },
        )
    )


def _open_offer(mesh, exclude_subject: str | None = None):
    engine = engine_for("services", mesh.settings)
    with engine.connect() as conn:
        applied = select(applications.c.offer_id)
        found = [
            with_full_form(conn, r)
            for r in conn.execute(  # as the services part reads them
                select(offers).where(offers.c.service_id == "test-benefit", offers.c.id.not_in(applied)).limit(5)
            ).mappings()
        ]
    engine.dispose()
    return found


def test_an_application_with_a_forged_signature_or_for_another_household_is_refused(mesh, people, published):
    identity = open_identity(mesh.settings)
    card = identity.cards.card(_head_card(mesh)["card_id"])
    found = _open_offer(mesh)
    portal_subjects = people.convert([o["subject"] for o in found], "services", PORTAL.pseudonym_domain)
    first, second = [o for o, s in zip(found, portal_subjects) if s != card.person_ref][:2]  # not the card's own
    portal_subject = portal_subjects[found.index(first)]
    content = application_content(first)
    signature = card.sign_document(content, SIGNING_PASSWORD)
    forged = {
        "content": base64.b64encode(content).decode(),
        "certificate": card.signing_certificate_pem(),
        "signature": base64.b64encode(signature[:-2] + b"\x00\x00").decode(),
    }
    with pytest.raises(HubError) as refused:
        _submit(mesh, portal_subject, {"action": "apply", "offer": first["id"], "signed": forged})
    assert refused.value.status == 422 and "signature" in refused.value.problem["detail"]
    good = {**forged, "signature": base64.b64encode(signature).decode()}
    with pytest.raises(HubError) as other:  # a valid signature, but the offer is another household's
        _submit(mesh, portal_subject, {"action": "apply", "offer": second["id"], "signed": good})
    assert other.value.status == 422 and "no such offer" in other.value.problem["detail"]
    with pytest.raises(HubError) as signer:  # the offer's own person, but the card that signed is someone else's
        _submit(mesh, portal_subject, {"action": "apply", "offer": first["id"], "signed": good})
    assert signer.value.status == 422 and "not the applicant" in signer.value.problem["detail"]
    assert _count(mesh, applications, offer_id=first["id"]) == 0


def test_approved_applications_are_paid_in_a_zengin_file_that_reconciles(mesh, people, published):
    card_entry = _head_card(mesh)
    identity = open_identity(mesh.settings)
    card = identity.cards.card(card_entry["card_id"])
    kana = card_entry["label"].split("（")[1].rstrip("）").split()
    account = accounts.validate_account("0001", "001", "ordinary", "1234567", accounts.to_holder_kana(" ".join(kana)))
    accounts.register_account(engine_for("accounts", mesh.settings), card.person_ref, account, kana[0], kana[1])
    summary = publish_file(mesh.settings, published["path"])  # a re-run pays what is approved and payable
    assert summary.payout["paid"] >= 1
    for entry in summary.payout["files"]:
        parsed = zengin.parse((mesh.settings.data_dir / "payouts" / entry["name"]).read_bytes())
        assert parsed.total_yen == entry["total_yen"] and parsed.total_count == entry["count"]
        engine = engine_for("services", mesh.settings)
        with engine.connect() as conn:
            paid = conn.execute(
                select(func.sum(applications.c.amount_yen)).where(applications.c.payout_file == entry["name"])
            ).scalar()
        assert paid == parsed.total_yen
    engine = engine_for("services", mesh.settings)
    with engine.connect() as conn:
        ids = (
            conn.execute(
                select(applications.c.id).where(
                    applications.c.status == "paid", applications.c.service_id == "test-benefit"
                )
            )
            .scalars()
            .all()
        )
    with engine_for("notices", mesh.settings).connect() as conn:  # each paid person is told, once, as a payout
        told = conn.execute(with_texts().where(notice_table.c.idempotency_key.like("test-benefit:%:paid"))).all()
    told = [(row.idempotency_key, row.category, row.body_ja) for row in told]
    assert sorted(key.split(":")[1] for key, _, _ in told) == sorted(ids)
    assert all(
        category == "payout" and "円を" in body and "公金受取口座へ振り込みます" in body for _, category, body in told
    )
    from publicmesh.services.agency import AGENCY

    events = mesh.rows(
        "services", select(AGENCY.outbox.c.data).where(AGENCY.outbox.c.event_type == "application-status")
    )
    announced = {d["application"] for d in (json.loads(row[0]) for row in events) if d["status"] == "paid"}
    assert set(ids) <= announced  # each status change goes to the person's portal, live
    again = publish_file(mesh.settings, published["path"])
    assert again.payout.get("paid", 0) == 0
