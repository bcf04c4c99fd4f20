"""額改定: a birth into a household already offered the child allowance raises what it is owed — the offer itself
before anyone applied, a claim for the difference after — and tells the parent once per birth."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from sqlalchemy import insert, select, update

from publicmesh.services import applications as apps
from publicmesh.services.agency import AGENCY
from publicmesh.services.revisions import revise
from publicmesh.services.store import amount_revisions, applications, offers

DEFINITIONS = Path(__file__).resolve().parents[3] / "publicmesh" / "services" / "definitions"
DOC = yaml.safe_load((DEFINITIONS / "child-allowance.yaml").read_text(encoding="utf-8"))
HOUSEHOLD, HEAD = "H" * 22, "P" * 22
T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


class Hub:
    def __init__(self, prior_intent: bool = False):
        self.sent, self.prior_intent = [], prior_intent

    def notify(self, provider, purpose, service, sent):
        self.sent.extend(sent)
        return {"delivered": len(sent), "prior_intent": [self.prior_intent] * len(sent)}


@pytest.fixture
def engine(engine):
    """The services store on each backend (the root conftest's engine), with its tables."""
    AGENCY.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(offers).values(
                id="o-household",
                service_id=DOC["id"],
                unit_key=HOUSEHOLD,
                subject=HEAD,
                tenant="012084",
                amount_yen=20_000,
                form=form(1, 20_000),
                version=1,
                offered_at=T0,
            )
        )
    yield engine


def form(children: int, amount: int) -> dict:
    return {
        "title_ja": "児童手当",
        "title_en": "Child allowance",
        "fields": [{"name": "children", "value": children}, {"name": "amount", "value": amount}],
    }


def born(engine, hub, child: str, amount: int, children: int) -> str | None:
    unit = {"household": HOUSEHOLD, "subject": HEAD, "amount": amount}
    return revise(engine, hub, DOC, unit, form(children, amount), child.ljust(22, "c"))


def apply(engine, offer_id: str, status: str = "approved") -> dict:
    with engine.begin() as conn:
        offer = dict(conn.execute(select(offers).where(offers.c.id == offer_id)).mappings().one())
        created = apps.create(
            conn, offer, "tap", signature=None, review_over=200_000, automatic=True, actor="resident", definition=DOC
        )
        if status != "approved":
            conn.execute(update(applications).where(applications.c.id == created["id"]).values(status=status))
    return created


def rows(engine, table, *where) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).where(*where)).mappings()]


def test_before_anyone_applied_the_offer_itself_is_revised_and_the_parent_told(engine):
    hub = Hub()
    assert "from 20000 to 50000" in born(engine, hub, "first", 50_000, 2)
    [offer] = rows(engine, offers)
    assert offer["id"] == "o-household" and offer["amount_yen"] == 50_000 and offer["form"] == form(2, 50_000)
    [notice] = hub.sent
    assert notice["key"] == f"child-allowance:{'first'.ljust(22, 'c')}:revised" and notice["subject"] == HEAD
    assert notice["link"] == "/applications/offers/o-household"
    assert notice["body_ja"] == (
        "お子さんが生まれたので、2か月分の額が20,000円から50,000円になります。"
        "このお知らせを開いて申請すると、50,000円を受け取れます。"
    )
    assert rows(engine, amount_revisions) == []  # nothing was awarded yet: no claim for a difference


def test_after_applying_the_difference_is_a_claim_of_its_own_with_both_amounts_in_its_form(engine):
    first = apply(engine, "o-household")
    hub = Hub()
    born(engine, hub, "first", 50_000, 2)
    claim = next(o for o in rows(engine, offers) if o["id"] != "o-household")
    assert claim["amount_yen"] == 30_000 and claim["unit_key"] == "first".ljust(22, "c") and claim["subject"] == HEAD
    assert claim["form"]["revision"] == {"previous_yen": 20_000, "revised_yen": 50_000}
    assert claim["form"]["title_ja"] == "児童手当（額改定）"
    assert rows(engine, offers, offers.c.id == "o-household")[0]["amount_yen"] == 20_000  # as signed
    assert rows(engine, applications, applications.c.id == first["id"])[0]["amount_yen"] == 20_000
    assert [n["link"] for n in hub.sent] == [f"/applications/offers/{claim['id']}"]


def test_a_second_birth_before_the_claim_revises_that_claim_and_after_it_opens_a_new_one(engine):
    apply(engine, "o-household")
    hub = Hub()
    born(engine, hub, "twin-a", 50_000, 2)
    born(engine, hub, "twin-b", 110_000, 3)  # twins: one claim, from 20,000 to 110,000
    [claim] = [o for o in rows(engine, offers) if o["id"] != "o-household"]
    assert claim["amount_yen"] == 90_000 and claim["form"]["revision"]["revised_yen"] == 110_000
    assert len(hub.sent) == 2  # one notice per birth, both opening the one claim
    assert {n["link"] for n in hub.sent} == {f"/applications/offers/{claim['id']}"}
    apply(engine, claim["id"])
    born(engine, hub, "twin-b", 110_000, 3)  # the same birth handled again: nothing more is owed
    assert len(rows(engine, offers)) == 2
    born(engine, hub, "third", 170_000, 4)  # a later birth: what both applications award is the previous amount
    later = [o for o in rows(engine, offers) if o["unit_key"] == "third".ljust(22, "c")]
    assert [o["amount_yen"] for o in later] == [60_000]
    assert later[0]["form"]["revision"] == {"previous_yen": 110_000, "revised_yen": 170_000}


def test_nothing_is_revised_for_a_household_rejected(engine):
    apply(engine, "o-household", "rejected")
    hub = Hub()
    assert "rejected" in born(engine, hub, "first", 50_000, 2)
    assert [o["amount_yen"] for o in rows(engine, offers)] == [20_000] and hub.sent == []


def test_after_a_withdrawal_the_open_offer_itself_is_revised(engine):
    apply(engine, "o-household", "withdrawn")
    born(engine, Hub(), "first", 50_000, 2)
    assert [o["amount_yen"] for o in rows(engine, offers)] == [50_000]


def test_a_household_never_offered_the_service_is_left_to_be_offered_it(engine):
    hub = Hub()
    unit = {"household": "N" * 22, "subject": HEAD, "amount": 30_000}
    assert revise(engine, hub, DOC, unit, form(1, 30_000), "c" * 22) is None
    assert hub.sent == []


def test_a_prior_intent_claims_the_difference_without_asking(engine):
    apply(engine, "o-household")
    born(engine, Hub(prior_intent=True), "first", 50_000, 2)
    claimed = rows(engine, applications, applications.c.channel == "prior-intent")
    assert [(a["amount_yen"], a["status"]) for a in claimed] == [(30_000, "approved")]
