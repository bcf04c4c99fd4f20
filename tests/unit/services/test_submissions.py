"""Submissions on the services store with real JPKI signatures: typed fields are part of what is signed, and a
returned application is resubmitted only by its owner, only while returned, only with a fresh valid signature."""

from __future__ import annotations

import base64
import datetime as dt
import secrets

import orjson
import pytest
from sqlalchemy import create_engine, insert, select

from publicmesh.identity import BasicInformation, CardStore, JpkiAuthority, issue_card
from publicmesh.problems import Problem
from publicmesh.services import applications as apps
from publicmesh.services import forms, store
from publicmesh.services.agency import AGENCY
from publicmesh.services.submissions import Submissions
from publicmesh.settings import Settings
from publicmesh.storage import engine_for

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
SUBJECT, OTHER = "S" * 22, "O" * 22
PASSWORD = "ABC123"
PHONE = {"name": "phone", "label_ja": "日中の連絡先", "label_en": "Daytime phone", "type": "tel", "required": True}
DEFINITION = """
id: test-service
title: {ja: 試験給付金, en: Test benefit}
workflow: {automatic: false, review_over: 0}
notices: {}
"""


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'services.db'}")
    AGENCY.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(store.publications).values(service_id="test-service", version=1, content_hash="x",
                                                       definition=DEFINITION, published_at=T0, eligible=1, total_yen=0))
        conn.execute(insert(store.offers).values(
            id="offer1", service_id="test-service", unit_key="U" * 22, subject=SUBJECT, tenant="012084",
            amount_yen=50_000, version=1, offered_at=T0,
            form={"title_ja": "試験給付金", "title_en": "Test benefit", "audit_records": [7],
                  "fields": [{"name": "amount", "label_ja": "支給額", "label_en": "Amount", "format": "yen",
                              "value": 50_000}], "typed_fields": [PHONE]}))
    yield engine
    engine.dispose()


@pytest.fixture
def card(tmp_path):
    settings = Settings(data_dir=tmp_path / "identity")
    identity = engine_for("identity", settings)
    authority = JpkiAuthority.load_or_create(settings.keys_dir, identity)
    person = BasicInformation("北見　花子", "北海道北見市青葉町1番1号", dt.date(1988, 4, 2), 2)
    yield issue_card(authority, CardStore.open(identity, settings.keys_dir), base64.urlsafe_b64encode(
        secrets.token_bytes(16)).decode().rstrip("="), person, "1234", PASSWORD), settings.keys_dir
    identity.dispose()


@pytest.fixture
def submissions(card):
    taking = Submissions()
    taking._signatures = apps.SignatureCheck(card[1])
    return taking


def offer(engine) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(store.offers)).mappings().one())


def application(engine) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(store.applications)).mappings().one())


def signed(card, content: bytes) -> dict:
    signature = card[0].sign_document(content, PASSWORD)
    return {"content": base64.b64encode(content).decode(), "signature": base64.b64encode(signature).decode(),
            "certificate": card[0].signing_certificate_pem()}


def submit(engine, submissions, payload: dict, subject: str = SUBJECT) -> dict:
    with engine.begin() as conn:
        return submissions(conn, "012084", subject, payload)


def test_typed_values_are_normalised_checked_and_required():
    form = {"typed_fields": [PHONE, {**PHONE, "name": "note", "type": "text", "required": False}]}
    assert forms.typed_values(form, {"phone": " ０１５７-２３-４５６７ "}) == {"phone": "0157-23-4567"}
    for bad, code in (({}, "missing"), ({"phone": "call me"}, "invalid"), ({"phone": "0157", "x": "1"}, "unknown")):
        with pytest.raises(forms.TypedFieldError) as refused:
            forms.typed_values(form, bad)
        assert refused.value.code == code


@pytest.fixture
def returned(engine, submissions, card):
    """Applied with one phone number, then returned by staff with a reason."""
    content = apps.application_content(offer(engine), typed={"phone": "0157-00-0000"})
    answer = submit(engine, submissions, {"action": "apply", "offer": "offer1", "typed": {"phone": "0157-00-0000"},
                                          "signed": signed(card, content)})
    with engine.begin() as conn:
        apps.change(conn, answer["application"], "returned", "rev.kitami", "電話番号がつながりません")
    return application(engine)


def test_what_the_person_typed_is_signed_and_cannot_be_changed_afterwards(engine, submissions, card):
    content = apps.application_content(offer(engine), typed={"phone": "0157-00-0000"})
    with pytest.raises(Problem) as refused:  # the portal sends other values than those signed
        submit(engine, submissions, {"action": "apply", "offer": "offer1", "typed": {"phone": "0157-99-9999"},
                                     "signed": signed(card, content)})
    assert "signature" in refused.value.detail
    submit(engine, submissions, {"action": "apply", "offer": "offer1", "typed": {"phone": "0157-00-0000"},
                                 "signed": signed(card, content)})
    assert forms.signed_typed(application(engine)["signature"]) == {"phone": "0157-00-0000"}


def resubmission(engine, row: dict, phone: str) -> tuple[bytes, dict]:
    typed = {"phone": phone}
    return apps.application_content(offer(engine), typed=typed,
                                    resubmits=(row["id"], apps.signature_digest(row["signature"]))), typed


def test_a_returned_application_is_resubmitted_with_a_fresh_signature(engine, submissions, card, returned):
    content, typed = resubmission(engine, returned, "0157-23-4567")
    answer = submit(engine, submissions, {"action": "resubmit", "application": returned["id"], "typed": typed,
                                          "signed": signed(card, content)})
    assert answer == {"application": returned["id"], "status": "received"}
    row = application(engine)
    assert row["status"] == "received" and row["reason"] is None and row["signature"] != returned["signature"]
    assert forms.signed_typed(row["signature"]) == typed
    with engine.connect() as conn:
        steps = conn.execute(select(store.history.c.status, store.history.c.reason)
                             .order_by(store.history.c.id)).all()
    assert steps[-1] == ("received", apps.RESUBMITTED)
    with pytest.raises(Problem) as again:  # now received: not returned any more
        submit(engine, submissions, {"action": "resubmit", "application": returned["id"], "typed": typed,
                                     "signed": signed(card, content)})
    assert again.value.status == 409 and "returned" in again.value.detail


def test_a_resubmission_is_refused_unless_signed_anew_by_the_owner_and_nothing_changes(engine, submissions, card,
                                                                                       returned):
    content, typed = resubmission(engine, returned, "0157-23-4567")
    good = signed(card, content)
    forged = {**good, "signature": base64.b64encode(b"\x00" * 70).decode()}
    first = orjson.loads(returned["signature"])  # the first application's signature, sent again
    attempts = [
        (SUBJECT, {"action": "resubmit", "application": returned["id"], "typed": typed, "signed": forged}, 422),
        (SUBJECT, {"action": "resubmit", "application": returned["id"], "typed": typed, "signed": first}, 422),
        (OTHER, {"action": "resubmit", "application": returned["id"], "typed": typed, "signed": good}, 422),
        (SUBJECT, {"action": "resubmit", "application": returned["id"], "typed": {}, "signed": good}, 422),
    ]
    for subject, payload, status in attempts:
        with pytest.raises(Problem) as refused:
            submit(engine, submissions, payload, subject)
        assert refused.value.status == status
    assert application(engine) == returned
