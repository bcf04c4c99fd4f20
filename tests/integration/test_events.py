"""Events: written to the outbox with the change, routed by rules, converted, delivered at least once."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import orjson
from sqlalchemy import select, text

from publicmesh.agencies import child_allowance, health_insurance, local_tax, national_tax, resident_registry
from publicmesh.protocol.ca import read_private_key
from publicmesh.protocol.members import HUB
from publicmesh.protocol.signatures import Signer
from publicmesh.runtime.topology import part
from publicmesh.storage import engine_for

KITAMI = "012084"


def test_a_birth_reaches_a_subscriber_that_was_down_when_it_happened(mesh, people):
    mothers = people.registry(
        where=(resident_registry.residents.c.relation == "spouse")
        & (resident_registry.residents.c.sex == 2)
        & (resident_registry.residents.c.status == "resident"),
        limit=1,
    )
    mother = mothers[0]
    mesh.supervisor.kill("child-allowance")
    try:
        child = mesh.enrol_newborn()
        engine = engine_for("resident-registry", mesh.settings)
        with engine.begin() as conn:
            resident_registry.register_birth(
                conn, KITAMI, child, mother, "陽葵", "ヒマリ", "Himari", 2, dt.date.today()
            )
        engine.dispose()
        # the subscriber that is up gets it at once: a pending enrolment for the newborn
        insured_child = people.convert([child], "resident-registry", "health-insurance")[0]
        mesh.wait_for(
            lambda: mesh.rows(
                "health-insurance",
                select(health_insurance.coverage).where(health_insurance.coverage.c.pseudonym == insured_child),
            )
        )
    finally:
        mesh.supervisor.start_part(part(mesh.settings, "child-allowance"))
    claim_child = people.convert([child], "resident-registry", "child-allowance")[0]
    claims = mesh.wait_for(
        lambda: mesh.rows(
            "child-allowance",
            select(child_allowance.birth_claims).where(child_allowance.birth_claims.c.child == claim_child),
        )
    )
    assert len(claims) == 1
    # the parent arrived under the child-allowance office's own pseudonym
    assert claims[0].parent in people.convert(
        people.registry(where=resident_registry.residents.c.household_no == _household_of(mesh, mother), limit=10),
        "resident-registry",
        "child-allowance",
    )
    # each delivery is an exchange record under the newborn's audit pseudonym
    audit_child = people.convert([child], "resident-registry", "audit")[0]
    events = mesh.rows(
        "audit",
        text("SELECT consumer FROM audit_records WHERE subject = :s AND kind = 'event'").bindparams(s=audit_child),
    )
    assert {e.consumer for e in events} == {
        f"MUNI/{KITAMI}/child-allowance",
        "GOV/mhlw/health-insurance",
        "GOV/digital/services",
    }  # the last: the birth one-stop


def _household_of(mesh, pseudonym: str) -> int:
    return mesh.rows(
        "resident-registry",
        select(resident_registry.residents.c.household_no).where(resident_registry.residents.c.pseudonym == pseudonym),
    )[0].household_no


def test_a_redelivered_event_is_applied_once(mesh, people):
    subject = people.convert(people.registry(limit=1), "resident-registry", "child-allowance")[0]
    event = {
        "idempotency_key": f"test:{uuid.uuid4()}",
        "member": f"MUNI/{KITAMI}/child-allowance",
        "source": f"MUNI/{KITAMI}/resident-registry",
        "type": "death",
        "subject": subject,
        "data": {"death_date": "2026-11-01"},
        "occurred_at": "2026-11-01T00:00:00+00:00",
    }
    signer = Signer(str(HUB), read_private_key(mesh.settings.keys_dir / "members" / f"{HUB.file_stem}.key"))
    answers = []
    for _ in range(2):
        body = orjson.dumps({"events": [event]})
        headers = signer.sign_request("POST", "/v1/events", body, uuid.uuid4().hex)
        answers.append(httpx.post(mesh.url("child-allowance") + "/v1/events", content=body, headers=headers).json())
    assert answers == [{"accepted": 1, "duplicates": 0}, {"accepted": 0, "duplicates": 1}]


def _assessed_taxpayer(mesh, people) -> tuple[str, str]:
    """A taxpayer of the city whom the city assesses this fiscal year, as (national-tax, local-tax) pseudonyms.
    Not every taxpayer is (about 1.5% of the demo city's are not), and a correction for one who is not changes
    no assessment; which taxpayers those are differs from run to run (pseudonyms come from a fresh key)."""
    taxpayers = [
        r.pseudonym
        for r in mesh.rows(
            "national-tax",
            select(national_tax.taxpayers.c.pseudonym)
            .where(national_tax.taxpayers.c.municipality_code == KITAMI)
            .order_by(national_tax.taxpayers.c.pseudonym)
            .limit(50),
        )
    ]
    local = people.convert(taxpayers, "national-tax", "local-tax")
    a = local_tax.assessments.c
    assessed = {
        r.pseudonym
        for r in mesh.rows(
            "local-tax",
            select(a.pseudonym).where(
                a.tenant == KITAMI, a.fiscal_year == local_tax.FISCAL_YEAR, a.pseudonym.in_(local)
            ),
        )
    }
    return next((n, lt) for n, lt in zip(taxpayers, local) if lt in assessed)


def test_an_income_correction_reaches_the_citys_resident_tax(mesh, people):
    taxpayer, local = _assessed_taxpayer(mesh, people)
    engine = engine_for("national-tax", mesh.settings)
    with engine.begin() as conn:
        national_tax.correct_income(conn, taxpayer, 9_876_000, 7_000_000)
    engine.dispose()
    try:
        row = mesh.wait_for(
            lambda: [
                r
                for r in mesh.rows(
                    "local-tax", select(local_tax.assessments).where(local_tax.assessments.c.pseudonym == local)
                )
                if r.income == 9_876_000
            ]
        )
    except AssertionError:
        inbox = local_tax.AGENCY.inbox.c
        arrived = mesh.rows("local-tax", select(inbox.event_type, inbox.member).where(inbox.subject == local))
        raise AssertionError(
            f"the correction did not change the assessment; the city's inbox holds {arrived}"
        ) from None
    assert row[0].municipal_tax == 7_000_000 * 6 // 100 + 4_000
