"""Consent-based exchanges: the hub forwards only with the person's own, signed, current consent."""

from __future__ import annotations

import json

import pytest

from publicmesh import consent
from publicmesh.identity import open_identity
from publicmesh.protocol.client import HubError
from publicmesh.protocol.members import PORTAL, MemberId
from publicmesh.storage import engine_for

CONSUMER = MemberId.parse("GOV/mhlw/employment-insurance")
PROVIDER = "GOV/nta/national-tax"
PURPOSE = consent.Purpose(
    "job-seeker-support-loan",
    "求職者支援資金融資の審査のため、所得を確認します",
    "To check your income for a job-seeker support loan",
)
SIGNING_PASSWORD = "ABC123"  # the demo cards' signing password


@pytest.fixture(scope="module")
def taxpayers(mesh, people):
    """Two demo card holders with an income record, as (card, subject in the consumer's domain)."""
    identity = open_identity(mesh.settings)
    portal = mesh.client(str(PORTAL))
    found = []
    for entry in json.loads((mesh.settings.data_dir / "demo-cards.json").read_text(encoding="utf-8"))[
        4:11
    ]:  # 0-3 and the last: test_portal_access
        card = identity.cards.card(entry["card_id"])
        try:
            portal.query(PROVIDER, "income", card.person_ref, ["tax_year"], "self-information")
        except HubError:
            continue
        found.append((card, people.convert([card.person_ref], PORTAL.pseudonym_domain, CONSUMER.pseudonym_domain)[0]))
        if len(found) == 2:
            return found
    pytest.fail("fewer than two demo card holders file an income tax return")


def _give(mesh, card, **window):
    return consent.give_consent(
        engine_for("consent", mesh.settings),
        card.person_ref,
        str(CONSUMER),
        ["national-tax/income"],
        PURPOSE,
        sign=lambda data: card.sign_document(data, SIGNING_PASSWORD),
        **window,
    )


def _ask(mesh, subject, consent_id=None):
    return mesh.client(str(CONSUMER)).query(
        PROVIDER, "income", subject, ["tax_year", "income"], PURPOSE.id, consent=consent_id
    )


def test_without_a_consent_the_hub_refuses_with_problem_details(mesh, taxpayers):
    _, subject = taxpayers[0]
    before = _consent_records(mesh)
    with pytest.raises(HubError) as refused:
        _ask(mesh, subject)
    assert refused.value.status == 403 and refused.value.problem["type"].endswith(":no-consent")
    # nothing recorded for the refused query (other parts' events may be recorded meanwhile: count only ours)
    assert _consent_records(mesh) == before


def _consent_records(mesh) -> int:
    from sqlalchemy import text

    from publicmesh.storage import engine_for

    engine = engine_for("audit", mesh.settings)
    with engine.connect() as conn:
        n = conn.execute(
            text("SELECT COUNT(*) FROM audit_records WHERE dataset = 'income' AND kind = 'query'")
        ).scalar()
    engine.dispose()
    return n


def test_the_persons_signed_consent_lets_the_data_through_and_is_recorded(mesh, taxpayers):
    card, subject = taxpayers[0]
    given = _give(mesh, card)
    before = _consent_records(mesh)
    answer = _ask(mesh, subject, given.id)
    assert set(answer["data"]) == {"tax_year", "income"}
    assert given.id in answer["legal_basis"] and "本人の同意" in answer["legal_basis"]
    assert _consent_records(mesh) == before + 1


def test_someone_elses_consent_does_not_open_this_persons_data(mesh, taxpayers):
    (card, _), (_, other_subject) = taxpayers
    given = _give(mesh, card)
    with pytest.raises(HubError) as refused:
        _ask(mesh, other_subject, given.id)
    assert refused.value.status == 403 and "another person" in refused.value.problem["detail"]


def test_a_revoked_consent_stops_the_exchange(mesh, taxpayers):
    card, subject = taxpayers[0]
    given = _give(mesh, card)
    _ask(mesh, subject, given.id)
    consent.revoke_consent(engine_for("consent", mesh.settings), given.id, card.person_ref)
    with pytest.raises(HubError) as refused:
        _ask(mesh, subject, given.id)
    assert refused.value.status == 403


def test_a_consent_row_edited_in_the_database_fails_the_signature_check(mesh, taxpayers):
    from sqlalchemy import update

    from publicmesh.consent.schema import consents

    card, subject = taxpayers[0]
    given = _give(mesh, card)
    engine = engine_for("consent", mesh.settings)
    with engine.begin() as conn:  # the window widened behind the person's back: the signature no longer matches
        conn.execute(
            update(consents).where(consents.c.id == given.id).values(valid_until="2099-01-01T00:00:00.000000Z")
        )
    with pytest.raises(HubError) as refused:
        _ask(mesh, subject, given.id)
    assert refused.value.status == 403


def test_consent_based_rules_are_never_answered_in_bulk(mesh, taxpayers):
    (card, subject), (_, other) = taxpayers
    with pytest.raises(HubError) as refused:
        mesh.client(str(CONSUMER)).bulk(PROVIDER, "income", [subject, other], ["tax_year"], PURPOSE.id)
    assert refused.value.status == 403
