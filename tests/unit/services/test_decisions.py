"""Decision notices: written with the decision from the definition's texts, sent through the hub, kept on failure."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import insert, select

from publicmesh.applications.lifecycle import Action
from publicmesh.problems import Problem
from publicmesh.protocol.client import HubError
from publicmesh.services import applications as apps
from publicmesh.services import decisions, store
from publicmesh.services.agency import AGENCY

DEFINITIONS = Path(__file__).resolve().parents[3] / "publicmesh" / "services" / "definitions"
T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@pytest.fixture
def engine(engine):
    """The services store on each backend (the root conftest's engine), with its tables."""
    AGENCY.metadata.create_all(engine)  # the services store: applications, the event outbox, decision notices
    yield engine


def publish(engine, path: Path) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(store.publications).values(
                service_id=yaml.safe_load(path.read_text(encoding="utf-8"))["id"],
                version=1,
                content_hash="x",
                definition=path.read_text(encoding="utf-8"),
                published_at=T0,
                eligible=1,
                total_yen=0,
            )
        )


def application(engine, service_id: str = "emergency-benefit", amount: int = 300_000) -> str:
    app_id = f"a{amount}{service_id[:4]}"
    with engine.begin() as conn:
        conn.execute(
            insert(store.applications).values(
                id=app_id,
                service_id=service_id,
                unit_key=app_id.ljust(22, "U"),
                offer_id="o1",
                subject="S" * 22,
                tenant="012084",
                amount_yen=amount,
                status="in-review",
                channel="tap",
                needs_four_eyes=False,
                submitted_at=T0,
            )
        )
    return app_id


def notices(engine) -> list[dict]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                select(decisions.decision_notices).order_by(decisions.decision_notices.c.created_at)
            ).mappings()
        ]


def test_a_rejection_writes_the_definitions_notice_with_the_reason(engine):
    publish(engine, DEFINITIONS / "emergency-benefit.yaml")
    app_id = application(engine)
    with engine.begin() as conn:
        apps.change(conn, app_id, Action.REJECT, "rev.kitami", "世帯の所得が基準を超えています", tenant="012084")
    [notice] = notices(engine)
    assert notice["key"] == f"emergency-benefit:{app_id}:rejected" and notice["sent_at"] is None
    assert notice["title_ja"] == "緊急支援給付金を支給できません"
    assert notice["body_ja"] == "理由: 世帯の所得が基準を超えています"
    assert notice["body_en"] == "Reason: 世帯の所得が基準を超えています"


def test_an_approval_and_a_return_use_their_own_texts_and_amount(engine):
    publish(engine, DEFINITIONS / "emergency-benefit.yaml")
    approved, returned = application(engine, amount=300_000), application(engine, amount=200_000)
    with engine.begin() as conn:
        apps.change(conn, approved, Action.APPROVE, "appr.kitami")
        apps.change(conn, returned, Action.RETURN, "rev.kitami", "口座名義を確認してください")
        row = dict(conn.execute(select(store.applications).where(store.applications.c.id == returned)).mappings().one())
        apps.withdraw(conn, row, {"signature": "signed"}, "resident")  # the person's own act: no notice
    by_key = {n["key"].rsplit(":", 1)[1]: n for n in notices(engine)}
    assert set(by_key) == {"approved", "returned"}
    assert by_key["approved"]["title_ja"] == "緊急支援給付金の支給が決まりました"
    assert by_key["approved"]["body_ja"] == "300,000円を公金受取口座に振り込みます。"
    assert by_key["returned"]["title_ja"] == "緊急支援給付金の申請が差し戻されました"
    assert by_key["returned"]["body_ja"].startswith("理由: 口座名義を確認してください　")


def test_a_move_the_lifecycle_does_not_hold_is_refused_and_writes_nothing(engine):
    publish(engine, DEFINITIONS / "emergency-benefit.yaml")
    app_id = application(engine)
    with engine.begin() as conn:
        apps.change(conn, app_id, Action.RETURN, "rev.kitami", "口座名義を確認してください")
    for action in (Action.RETURN, Action.APPROVE):  # returned: it waits for the person, not for staff
        with pytest.raises(Problem) as refused, engine.begin() as conn:
            apps.change(conn, app_id, action, "rev.kitami", "もう一度")
        assert refused.value.status == 409 and refused.value.type.slug == "wrong-state"
        assert refused.value.detail.endswith("; this one is returned")
    with engine.connect() as conn:
        row = conn.execute(select(store.applications).where(store.applications.c.id == app_id)).mappings().one()
        steps = conn.execute(select(store.history.c.status).where(store.history.c.application_id == app_id)).all()
    assert (row["status"], row["reason"]) == ("returned", "口座名義を確認してください")
    assert [s for (s,) in steps] == ["returned"] and len(notices(engine)) == 1
    with pytest.raises(ValueError), engine.begin() as conn:  # the person's acts and the payout have their own paths
        apps.change(conn, app_id, Action.WITHDRAW, "resident")


def test_without_a_publication_or_a_returned_text_the_plain_words_are_sent(engine, tmp_path):
    doc = yaml.safe_load((DEFINITIONS / "child-allowance.yaml").read_text(encoding="utf-8"))
    del doc["notices"]["returned"]
    old = tmp_path / "child-allowance.yaml"
    old.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    publish(engine, old)
    returned, unknown = application(engine, "child-allowance"), application(engine, "unpublished-service")
    with engine.begin() as conn:
        apps.change(conn, returned, Action.RETURN, "rev.kitami", "所得の確認が必要です")
        apps.change(conn, unknown, Action.REJECT, "rev.kitami", "対象外です")
    by_service = {n["service_id"]: n for n in notices(engine)}
    assert by_service["child-allowance"]["title_ja"] == "児童手当の申請が差し戻されました"
    assert by_service["child-allowance"]["body_ja"].startswith("理由: 所得の確認が必要です")
    assert by_service["unpublished-service"]["title_en"] == "Your application for unpublished-service was not approved"


class Hub:
    def __init__(self, fail: Exception | None = None):
        self.calls, self.fail = [], fail

    def notify(self, provider, purpose, service, sent):
        if self.fail is not None:
            raise self.fail
        self.calls.append((provider, purpose, service, sent))
        return {"delivered": len(sent), "prior_intent": [False] * len(sent)}


def test_pending_notices_go_through_the_hub_once_per_service_and_stay_pending_on_failure(engine):
    publish(engine, DEFINITIONS / "emergency-benefit.yaml")
    app_id = application(engine)
    with engine.begin() as conn:
        apps.change(conn, app_id, Action.REJECT, "rev.kitami", "対象外です")
    for failure in (HubError(503, {"title": "unavailable"}), httpx.ConnectError("hub down")):
        assert decisions.NoticeSender(engine, Hub(failure)).send_pending() == 0
        assert notices(engine)[0]["sent_at"] is None
    hub = Hub()
    assert decisions.NoticeSender(engine, hub).send_pending() == 1
    [(provider, purpose, service, sent)] = hub.calls
    assert (provider, purpose, service) == (
        "GOV/digital/portal",
        "specified-public-benefit:emergency-benefit",
        "emergency-benefit",
    )
    assert sent[0]["subject"] == "S" * 22 and sent[0]["key"] == f"emergency-benefit:{app_id}:rejected"
    assert sent[0]["link"] == "/applications"
    assert notices(engine)[0]["sent_at"] is not None
    assert decisions.NoticeSender(engine, hub).send_pending() == 0 and len(hub.calls) == 1


def offer(service_id: str = "emergency-benefit", amount: int = 300_000, unit: str = "U") -> dict:
    return {
        "id": f"o-{unit}",
        "service_id": service_id,
        "unit_key": unit * 22,
        "subject": "S" * 22,
        "tenant": "012084",
        "amount_yen": amount,
        "form": {},
    }


def test_an_automatic_approval_writes_the_approved_notice_from_the_definition_being_published(engine):
    # the definition is not recorded as published yet: publish records it after its decide phase
    doc = yaml.safe_load((DEFINITIONS / "emergency-benefit.yaml").read_text(encoding="utf-8"))
    with engine.begin() as conn:
        approved = apps.create(
            conn,
            offer(),
            "prior-intent",
            signature=None,
            review_over=1_000_000,
            automatic=True,
            actor="prior-intent",
            definition=doc,
        )
        apps.create(
            conn,
            offer(amount=2_000_000, unit="V"),
            "prior-intent",
            signature=None,
            review_over=1_000_000,
            automatic=True,
            actor="prior-intent",
            definition=doc,
        )  # four-eyes
    [notice] = notices(engine)
    assert notice["key"] == f"emergency-benefit:{approved['id']}:approved"
    assert notice["title_ja"] == "緊急支援給付金の支給が決まりました"
    assert notice["body_ja"] == "300,000円を公金受取口座に振り込みます。"


def test_deciding_by_prior_intent_sends_each_approval_notice_once(engine):
    from publicmesh.services.publish import decide_by_intent

    doc = yaml.safe_load((DEFINITIONS / "emergency-benefit.yaml").read_text(encoding="utf-8"))
    hub = Hub()
    assert decide_by_intent(engine, hub, doc, [offer()]) == 1
    assert decide_by_intent(engine, hub, doc, [offer()]) == 0  # published again: the unit has its application already
    [(_, _, _, sent)] = hub.calls
    assert [n["key"].rsplit(":", 1)[1] for n in sent] == ["approved"] and sent[0]["link"] == "/applications"
    [notice] = notices(engine)
    assert notice["sent_at"] is not None


def test_a_payout_notice_names_the_amount_and_date_and_is_filed_as_a_payout(engine, tmp_path):
    publish(engine, DEFINITIONS / "emergency-benefit.yaml")
    app_id = application(engine)
    paid = [{"id": app_id, "service_id": "emergency-benefit", "subject": "S" * 22, "amount_yen": 300_000}]
    with engine.begin() as conn:
        decisions.record_paid(conn, paid, dt.date(2026, 12, 4))
        decisions.record_paid(conn, [], dt.date(2026, 12, 4))  # nothing paid: nothing written
    [notice] = notices(engine)
    assert notice["key"] == f"emergency-benefit:{app_id}:paid"
    assert notice["title_ja"] == "緊急支援給付金を振り込みます"
    assert notice["body_ja"] == "300,000円を2026年12月4日に公金受取口座へ振り込みます。"
    assert notice["body_en"] == "300,000 yen will reach your public-fund account on 4 December 2026."
    hub = Hub()
    assert decisions.NoticeSender(engine, hub).send_pending() == 1
    [(_, _, _, sent)] = hub.calls
    assert sent[0]["category"] == "payout" and sent[0]["link"] == "/applications"

    plain = tmp_path / "plain.yaml"  # a definition without a paid text: the plain words, with the date
    doc = yaml.safe_load((DEFINITIONS / "emergency-benefit.yaml").read_text(encoding="utf-8"))
    del doc["notices"]["paid"]
    doc["id"] = "plain-benefit"
    plain.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    publish(engine, plain)
    with engine.begin() as conn:
        decisions.record_paid(conn, [{**paid[0], "id": "p1", "service_id": "plain-benefit"}], dt.date(2027, 1, 8))
    assert notices(engine)[-1]["body_ja"] == "300,000円を2027年1月8日に公金受取口座へ振り込みます。"
