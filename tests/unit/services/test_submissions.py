"""Submissions on the services store with real JPKI signatures: typed fields are part of what is signed; a
returned application is resubmitted only by its owner, only while returned, only with a fresh valid signature; a
proxy's application names the proxy and the mandate, checked against the certificate and the principal's mandates;
the person's own is signed with one of their own certificates in force; a withdrawal is signed like an application."""

from __future__ import annotations

import base64
import datetime as dt
import secrets

import orjson
import pytest
from sqlalchemy import insert, select

from publicmesh.applications import content as signed_content
from publicmesh.applications import forms, lifecycle
from publicmesh.applications.lifecycle import Action
from publicmesh.identity import BasicInformation, CardStore, JpkiAuthority, issue_card
from publicmesh.problems import Problem
from publicmesh.services import applications as apps
from publicmesh.services import store
from publicmesh.services.agency import AGENCY
from publicmesh.services.submissions import Submissions
from publicmesh.settings import Settings
from publicmesh.storage import engine_for

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
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
def engine(engine):
    """The services store on each backend (the root conftest's engine), with its tables."""
    AGENCY.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(store.publications).values(
                service_id="test-service",
                version=1,
                content_hash="x",
                definition=DEFINITION,
                published_at=T0,
                eligible=1,
                total_yen=0,
            )
        )
        conn.execute(
            insert(store.offers).values(
                id="offer1",
                service_id="test-service",
                unit_key="U" * 22,
                subject=SUBJECT,
                tenant="012084",
                amount_yen=50_000,
                version=1,
                offered_at=T0,
                form={
                    "title_ja": "試験給付金",
                    "title_en": "Test benefit",
                    "audit_records": [7],
                    "fields": [
                        {"name": "amount", "label_ja": "支給額", "label_en": "Amount", "format": "yen", "value": 50_000}
                    ],
                    "typed_fields": [PHONE],
                },
            )
        )
    yield engine


def _ref() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


@pytest.fixture
def jpki(tmp_path):
    settings = Settings(data_dir=tmp_path / "identity")
    identity = engine_for("identity", settings)
    authority = JpkiAuthority.load_or_create(settings.keys_dir, identity)
    yield authority, CardStore.open(identity, settings.keys_dir), settings.keys_dir
    identity.dispose()


@pytest.fixture
def card(jpki):
    person = BasicInformation("北見　花子", "北海道北見市青葉町1番1号", dt.date(1988, 4, 2), 2)
    return issue_card(jpki[0], jpki[1], _ref(), person, "1234", PASSWORD), jpki[2]


@pytest.fixture
def proxy_card(jpki):
    person = BasicInformation("網走　次郎", "北海道網走市南6条東4丁目", dt.date(1960, 1, 20), 1)
    return issue_card(jpki[0], jpki[1], _ref(), person, "1234", PASSWORD), jpki[2]


def serial_of(card) -> str:
    from publicmesh.identity import load_certificate
    from publicmesh.identity.certificates import serial_hex

    return serial_hex(load_certificate(card[0].signing_certificate_pem()).serial_number)


def own(*cards):
    """What the portal answers for SUBJECT when ``cards`` are theirs and nobody holds a mandate."""
    serials = [serial_of(c) for c in cards]
    return lambda subject: {"signing_certificates": serials if subject == SUBJECT else [], "mandates": []}


@pytest.fixture
def submissions(card):
    taking = Submissions(signers=own(card))
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
    return {
        "content": base64.b64encode(content).decode(),
        "signature": base64.b64encode(signature).decode(),
        "certificate": card[0].signing_certificate_pem(),
    }


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
    content = signed_content.application_content(offer(engine), typed={"phone": "0157-00-0000"})
    answer = submit(
        engine,
        submissions,
        {"action": "apply", "offer": "offer1", "typed": {"phone": "0157-00-0000"}, "signed": signed(card, content)},
    )
    with engine.begin() as conn:
        apps.change(conn, answer["application"], Action.RETURN, "rev.kitami", "電話番号がつながりません")
    return application(engine)


def test_what_the_person_typed_is_signed_and_cannot_be_changed_afterwards(engine, submissions, card):
    content = signed_content.application_content(offer(engine), typed={"phone": "0157-00-0000"})
    with pytest.raises(Problem) as refused:  # the portal sends other values than those signed
        submit(
            engine,
            submissions,
            {"action": "apply", "offer": "offer1", "typed": {"phone": "0157-99-9999"}, "signed": signed(card, content)},
        )
    assert "signature" in refused.value.detail
    submit(
        engine,
        submissions,
        {"action": "apply", "offer": "offer1", "typed": {"phone": "0157-00-0000"}, "signed": signed(card, content)},
    )
    assert forms.signed_typed(application(engine)["signature"]) == {"phone": "0157-00-0000"}


def resubmission(engine, row: dict, phone: str) -> tuple[bytes, dict]:
    typed = {"phone": phone}
    return signed_content.application_content(
        offer(engine), typed=typed, resubmits=(row["id"], signed_content.signature_digest(row["signature"]))
    ), typed


def test_a_returned_application_is_resubmitted_with_a_fresh_signature(engine, submissions, card, returned):
    content, typed = resubmission(engine, returned, "0157-23-4567")
    answer = submit(
        engine,
        submissions,
        {"action": "resubmit", "application": returned["id"], "typed": typed, "signed": signed(card, content)},
    )
    assert answer == {"application": returned["id"], "status": "received"}
    row = application(engine)
    assert row["status"] == "received" and row["reason"] is None and row["signature"] != returned["signature"]
    assert forms.signed_typed(row["signature"]) == typed
    with engine.connect() as conn:
        steps = conn.execute(select(store.history.c.status, store.history.c.reason).order_by(store.history.c.id)).all()
    assert steps[-1] == ("received", lifecycle.RESUBMITTED)
    with pytest.raises(Problem) as again:  # now received: not returned any more
        submit(
            engine,
            submissions,
            {"action": "resubmit", "application": returned["id"], "typed": typed, "signed": signed(card, content)},
        )
    assert again.value.status == 409 and "returned" in again.value.detail


def test_a_resubmission_is_refused_unless_signed_anew_by_the_owner_and_nothing_changes(
    engine, submissions, card, returned
):
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


MANDATE = "4f1c2a9e0b7d4c3a8e6f5d2c1b0a9e8d"


def mandates_of(*serials: str, scopes=("applications",), until: str = "2999-01-01T00:00:00+00:00"):
    """What the portal answers for the principal: one granted mandate held by the certificates ``serials``."""
    entry = {
        "mandate": MANDATE,
        "kind": "granted",
        "scopes": list(scopes),
        "valid_from": "2020-01-01T00:00:00+00:00",
        "valid_until": until,
        "proxy_certificates": list(serials),
    }
    return lambda subject: {"signing_certificates": [], "mandates": [entry] if subject == SUBJECT else []}


def naming(card, mandate: str = MANDATE) -> dict:
    from publicmesh.identity import basic_information, load_certificate
    from publicmesh.identity.certificates import serial_hex

    certificate = load_certificate(card[0].signing_certificate_pem())
    return {
        "name": basic_information(certificate).name,
        "certificate": serial_hex(certificate.serial_number),
        "mandate": mandate,
    }


def test_a_proxy_applies_naming_themself_and_the_mandate(engine, proxy_card):
    proxy = naming(proxy_card)
    taking = Submissions(signers=mandates_of(proxy["certificate"]))
    taking._signatures = apps.SignatureCheck(proxy_card[1])
    content = signed_content.application_content(offer(engine), typed={"phone": "0157-00-0000"}, proxy=proxy)
    submit(
        engine,
        taking,
        {
            "action": "apply",
            "offer": "offer1",
            "typed": {"phone": "0157-00-0000"},
            "signed": signed(proxy_card, content),
            "proxy": proxy,
        },
    )
    row = application(engine)
    assert row["channel"] == "proxy"
    named = orjson.loads(base64.b64decode(orjson.loads(row["signature"])["content"]))
    assert named["mandate"] == MANDATE and named["proxy"] == {"name": "網走　次郎", "certificate": proxy["certificate"]}
    with engine.connect() as conn:
        assert conn.execute(select(store.history.c.actor)).scalars().first() == "proxy"


def test_a_proxy_outside_the_mandate_is_refused(engine, card, proxy_card):
    proxy, other = naming(proxy_card), naming(card)
    cases = [  # (what the content and payload name, whose card signs, the principal's mandates, why refused)
        (naming(proxy_card, "0" * 32), proxy_card, mandates_of(proxy["certificate"]), "no mandate"),
        (proxy, proxy_card, mandates_of(other["certificate"]), "not the signer's"),
        (proxy, proxy_card, mandates_of(proxy["certificate"], scopes=("notices",)), "does not cover applications"),
        (proxy, proxy_card, mandates_of(proxy["certificate"], until="2021-01-01T00:00:00+00:00"), "not in force"),
        ({**proxy, "name": "北見　花子"}, proxy_card, mandates_of(proxy["certificate"]), "not the signing"),
        (proxy, card, mandates_of(proxy["certificate"]), "did not sign"),  # signed with another card
    ]
    for named, signer, mandates, why in cases:
        taking = Submissions(signers=mandates)
        taking._signatures = apps.SignatureCheck(signer[1])
        content = signed_content.application_content(offer(engine), typed={"phone": "0157-00-0000"}, proxy=named)
        with pytest.raises(Problem) as refused:
            submit(
                engine,
                taking,
                {
                    "action": "apply",
                    "offer": "offer1",
                    "typed": {"phone": "0157-00-0000"},
                    "signed": signed(signer, content),
                    "proxy": named,
                },
            )
        assert why in refused.value.detail
    bare = Submissions(signers=mandates_of(proxy["certificate"]))
    bare._signatures = apps.SignatureCheck(proxy_card[1])
    content = signed_content.application_content(offer(engine), typed={"phone": "0157-00-0000"})
    with pytest.raises(Problem) as refused:  # the flag alone, as the portal sent it before
        submit(
            engine,
            bare,
            {
                "action": "apply",
                "offer": "offer1",
                "typed": {"phone": "0157-00-0000"},
                "signed": signed(proxy_card, content),
                "proxy": True,
            },
        )
    assert "names the proxy" in refused.value.detail
    with engine.connect() as conn:
        assert conn.execute(select(store.applications)).first() is None


def test_the_persons_own_application_is_refused_when_signed_with_someone_elses_card(engine, card, proxy_card):
    """A valid signature is not enough: without a mandate named, the signer must be the applicant (a card that is
    not theirs, or theirs but revoked, is not among their certificates in force)."""
    for theirs in ((), (proxy_card,)):  # the signer's card is not the person's; the person's card was revoked
        taking = Submissions(signers=own(*theirs) if theirs else own())
        taking._signatures = apps.SignatureCheck(card[1])
        content = signed_content.application_content(offer(engine), typed={"phone": "0157-00-0000"})
        with pytest.raises(Problem) as refused:
            submit(
                engine,
                taking,
                {
                    "action": "apply",
                    "offer": "offer1",
                    "typed": {"phone": "0157-00-0000"},
                    "signed": signed(card, content),
                },
            )
        assert "not the applicant" in refused.value.detail
    with engine.connect() as conn:
        assert conn.execute(select(store.applications)).first() is None


def test_a_withdrawal_is_signed_by_the_person_and_kept(engine, submissions, card, proxy_card, returned):
    content = signed_content.withdrawal_content(returned)
    refused_payloads = [
        {"action": "withdraw", "application": returned["id"]},  # unsigned, as the portal sent it before
        {"action": "withdraw", "application": returned["id"], "proxy": True, "signed": signed(card, content)},
        {
            "action": "withdraw",
            "application": returned["id"],  # signed over the application, not the withdrawal
            "signed": orjson.loads(returned["signature"]),
        },
    ]
    for payload in refused_payloads:
        with pytest.raises(Problem):
            submit(engine, submissions, payload)
    other = Submissions(signers=own(card))
    other._signatures = apps.SignatureCheck(proxy_card[1])
    with pytest.raises(Problem) as refused:  # another person's card, no mandate named
        submit(
            engine, other, {"action": "withdraw", "application": returned["id"], "signed": signed(proxy_card, content)}
        )
    assert "not the applicant" in refused.value.detail
    with pytest.raises(Problem):  # the right signature, for someone else's application
        submit(
            engine,
            submissions,
            {"action": "withdraw", "application": returned["id"], "signed": signed(card, content)},
            OTHER,
        )
    assert application(engine) == returned

    answer = submit(
        engine, submissions, {"action": "withdraw", "application": returned["id"], "signed": signed(card, content)}
    )
    assert answer == {"application": returned["id"], "status": "withdrawn"}
    with engine.connect() as conn:
        kept = conn.execute(select(store.withdrawals)).mappings().one()
        last = conn.execute(
            select(store.history.c.status, store.history.c.actor).order_by(store.history.c.id.desc())
        ).first()
    assert kept["application_id"] == returned["id"] and kept["actor"] == "resident"
    assert base64.b64decode(orjson.loads(kept["signature"])["content"]) == content
    assert tuple(last) == ("withdrawn", "resident")
    with pytest.raises(Problem):  # withdrawn is final
        submit(
            engine, submissions, {"action": "withdraw", "application": returned["id"], "signed": signed(card, content)}
        )


def test_a_proxy_withdraws_naming_the_mandate(engine, card, proxy_card, returned):
    proxy = naming(proxy_card)
    taking = Submissions(signers=mandates_of(proxy["certificate"]))
    taking._signatures = apps.SignatureCheck(proxy_card[1])
    bare = signed_content.withdrawal_content(
        returned
    )  # signed by the proxy but not naming them: not the applicant's card
    with pytest.raises(Problem):
        submit(
            engine, taking, {"action": "withdraw", "application": returned["id"], "signed": signed(proxy_card, bare)}
        )
    content = signed_content.withdrawal_content(returned, proxy=proxy)
    submit(
        engine,
        taking,
        {"action": "withdraw", "application": returned["id"], "signed": signed(proxy_card, content), "proxy": proxy},
    )
    with engine.connect() as conn:
        assert conn.execute(select(store.withdrawals.c.actor)).scalar() == "proxy"


def test_after_a_withdrawal_the_person_applies_again_with_a_signature_naming_it(engine, submissions, card, returned):
    withdrawal = signed_content.withdrawal_content(returned)
    submit(
        engine, submissions, {"action": "withdraw", "application": returned["id"], "signed": signed(card, withdrawal)}
    )
    with engine.connect() as conn:
        [reopened] = apps.of_subject(conn, SUBJECT)["offers"]  # the offer is open again, naming what was withdrawn
    after = {"application": returned["id"], "supersedes": signed_content.signature_digest(returned["signature"])}
    assert reopened["id"] == "offer1" and reopened["reapplies"] == after
    typed = {"phone": "0157-00-0000"}
    with pytest.raises(Problem) as replayed:  # the withdrawn application's own signature cannot apply again
        submit(
            engine,
            submissions,
            {"action": "apply", "offer": "offer1", "typed": typed, "signed": orjson.loads(returned["signature"])},
        )
    assert "signature" in replayed.value.detail
    content = signed_content.application_content(offer(engine), typed=typed, reapplies=after)
    answer = submit(
        engine, submissions, {"action": "apply", "offer": "offer1", "typed": typed, "signed": signed(card, content)}
    )
    with engine.connect() as conn:
        statuses = dict(conn.execute(select(store.applications.c.id, store.applications.c.status)).all())
        assert apps.of_subject(conn, SUBJECT)["offers"] == []
    assert statuses == {returned["id"]: "withdrawn", answer["application"]: "in-review"}
    with pytest.raises(Problem) as twice:  # one live application per unit: the database refuses a second
        submit(
            engine, submissions, {"action": "apply", "offer": "offer1", "typed": typed, "signed": signed(card, content)}
        )
    assert "already exists" in twice.value.detail
