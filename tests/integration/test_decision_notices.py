"""Decision notices on a running mesh: an application the rules approve at once (a prior intent, an automatic
workflow) gets the same approval notice a staff approval does, sent once however often the service is published;
the inbox files it as an application decision, apart from the notice that the benefit can be received."""

from __future__ import annotations

import json
import re

import pytest
from service_variants import variant
from sqlalchemy import func, select

from publicmesh import consent
from publicmesh.identity import open_identity
from publicmesh.notices.schema import notices as notice_table
from publicmesh.notices.schema import with_texts
from publicmesh.portal.account_pages import PRIOR_INTENT
from publicmesh.services.decisions import decision_notices
from publicmesh.services.operator import publish_file
from publicmesh.services.store import applications
from publicmesh.storage import engine_for

SERVICE = "auto-notice-test-benefit"
TITLE = "自動決定の試験給付金"
APPROVED_TITLE = "自動決定の試験給付金の支給が決まりました"
AMOUNT = 20_000
SIGNING_PASSWORD = "ABC123"  # the demo cards' signing password


def _card(mesh) -> dict:
    """The head of household test_services applies with (it taps and never locks or changes its card); the prior
    intent given here covers this module's service only."""
    cards = json.loads((mesh.settings.data_dir / "demo-cards.json").read_text(encoding="utf-8"))
    return next(c for c in cards[4:-1] + cards if c["relation"] in ("head", "single"))


@pytest.fixture(scope="module")
def card(mesh):
    return _card(mesh)


@pytest.fixture(scope="module")
def prior_intent(mesh, card):
    """The person said in advance: pay me this benefit without an application (signed with their card)."""
    holder = open_identity(mesh.settings).cards.card(card["card_id"])
    engine = engine_for("consent", mesh.settings)
    intent = consent.record_prior_intent(
        engine,
        holder.person_ref,
        PRIOR_INTENT,
        [SERVICE],
        sign=lambda data: holder.sign_document(data, SIGNING_PASSWORD),
    )
    yield intent
    consent.revoke_prior_intent(engine, intent.id, holder.person_ref)
    engine.dispose()


@pytest.fixture(scope="module")
def published(mesh, card, prior_intent, tmp_path_factory):
    """A benefit for our household, decided by the rules alone."""
    path = variant(
        tmp_path_factory.mktemp("definitions"),
        SERVICE,
        {"ja": TITLE, "en": "Automatic decision test benefit"},
        names=[card["label"].split("（")[0]],
        amount=str(AMOUNT),
        workflow={"automatic": True, "review_over": 10_000_000},
        notice_titles={"decided": {"ja": APPROVED_TITLE, "en": "Your automatic test benefit was approved"}},
    )
    return {"path": path, "summary": publish_file(mesh.settings, path)}


def _ours(mesh, person_ref: str) -> dict:
    """Our person's application (the service's eligible namesakes elsewhere have no prior intent)."""
    from publicmesh.numbers.keys import load_or_create_master
    from publicmesh.numbers.pseudonyms import PseudonymService
    from publicmesh.protocol.members import PORTAL

    subject = PseudonymService(load_or_create_master(mesh.settings.keys_dir)).convert(
        [person_ref], PORTAL.pseudonym_domain, ["services"]
    )["services"][0]
    engine = engine_for("services", mesh.settings)
    with engine.connect() as conn:
        row = (
            conn.execute(
                select(applications).where(applications.c.service_id == SERVICE, applications.c.subject == subject)
            )
            .mappings()
            .one()
        )
    engine.dispose()
    return dict(row)


def _approval_notices(mesh, application_id: str) -> list[dict]:
    engine = engine_for("notices", mesh.settings)
    with engine.connect() as conn:
        rows = (
            conn.execute(with_texts().where(notice_table.c.idempotency_key == f"{SERVICE}:{application_id}:approved"))
            .mappings()
            .all()
        )
    engine.dispose()
    return [dict(r) for r in rows]


def _outbox(mesh, application_id: str) -> list[dict]:
    engine = engine_for("services", mesh.settings)
    with engine.connect() as conn:
        rows = (
            conn.execute(select(decision_notices).where(decision_notices.c.application_id == application_id))
            .mappings()
            .all()
        )
    engine.dispose()
    return [dict(r) for r in rows]


def test_an_automatic_approval_sends_one_approval_notice_even_after_republishing(mesh, card, published):
    assert published["summary"].prior_intent_applications >= 1
    holder = open_identity(mesh.settings).cards.card(card["card_id"])
    application = _ours(mesh, holder.person_ref)
    # paid when another test registered this person's public-fund account before: approved either way
    assert application["status"] in ("approved", "paid") and application["channel"] == "prior-intent"
    [notice] = _approval_notices(mesh, application["id"])  # sent by the publish run itself
    assert notice["person_ref"] == holder.person_ref and notice["title_ja"] == APPROVED_TITLE
    assert f"{AMOUNT:,}円" in notice["body_ja"]

    again = publish_file(mesh.settings, published["path"])
    assert again.new_offers == 0 and again.prior_intent_applications == 0
    assert len(_approval_notices(mesh, application["id"])) == 1
    # its approval's (a payout notice follows it when the person has an account)
    [outbox] = [n for n in _outbox(mesh, application["id"]) if n["key"].endswith(":approved")]
    assert outbox["sent_at"] is not None

    client = mesh.portal_login(card["card_id"])
    assert client.get("/notices").text.count(APPROVED_TITLE) == 1
    client.close()


def test_the_category_a_service_names_reaches_the_inbox(mesh, card, published):
    holder = open_identity(mesh.settings).cards.card(card["card_id"])
    application = _ours(mesh, holder.person_ref)
    [approved] = _approval_notices(mesh, application["id"])
    assert approved["category"] == "application-decision"
    engine = engine_for("notices", mesh.settings)
    with engine.connect() as conn:
        eligible = conn.execute(
            with_texts().where(notice_table.c.idempotency_key == f"{SERVICE}:{application['unit_key']}:eligible")
        ).one()
        asked = (
            conn.execute(
                select(notice_table.c.category).where(
                    notice_table.c.idempotency_key == f"{SERVICE}:{application['id']}:no-account"
                )
            )
            .scalars()
            .all()
        )
    engine.dispose()
    assert eligible.category == "service-eligibility"  # the publish run names none: the default
    if application["status"] == "approved":  # not paid: the person has no public-fund account yet, and is asked
        assert asked == ["account-request"]

    client = mesh.portal_login(card["card_id"])
    everything = client.get("/notices").text
    decisions = client.get("/notices?category=application-decision").text
    offers = client.get("/notices?category=service-eligibility").text
    client.close()
    assert APPROVED_TITLE in everything and eligible.title_ja in everything
    assert APPROVED_TITLE in decisions and eligible.title_ja not in decisions
    assert eligible.title_ja in offers and APPROVED_TITLE not in offers
    article = re.search(
        rf'<article[^>]*data-category="application-decision">(?:(?!</article>).)*{APPROVED_TITLE}', decisions, re.S
    )
    assert article and "申請の結果" in article.group(0)  # labelled with its kind


def test_in_review_applications_get_no_approval_notice(mesh, published):
    engine = engine_for("services", mesh.settings)
    with engine.connect() as conn:
        waiting = conn.execute(
            select(func.count())
            .select_from(decision_notices)
            .join(applications, applications.c.id == decision_notices.c.application_id)
            .where(applications.c.status.in_(("received", "in-review")), decision_notices.c.key.like("%:approved"))
        ).scalar()
    engine.dispose()
    assert waiting == 0
