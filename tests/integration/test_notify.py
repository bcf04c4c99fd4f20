"""Notices through the hub in Arrow: converted to the portal's pseudonyms, forgeries not delivered, one exchange
record naming exactly the persons notified, bad rows refused with the row named, and only a member a rule
allows may write to inboxes."""

from __future__ import annotations

import secrets

import pyarrow as pa
import pytest
from sqlalchemy import func, select

from publicmesh.audit.schema import batches, records
from publicmesh.notices.schema import notices as notice_table
from publicmesh.protocol.client import HubError
from publicmesh.protocol.members import PORTAL
from publicmesh.services.fetch import purpose_of
from publicmesh.services.publish import SERVICES_MEMBER

SERVICE = "emergency-benefit"


def table(subjects: list[str], tag: str, **columns) -> pa.Table:
    n = len(subjects)
    return pa.table(
        {
            "subject": subjects,
            "key": [f"{tag}:{i}" for i in range(n)],
            "title_ja": ["お知らせ"] * n,
            "title_en": ["A notice"] * n,
            "body_ja": ["本文"] * n,
            "body_en": ["Body"] * n,
            "link": ["/inbox"] * n,
            **columns,
        }
    )


@pytest.fixture(scope="module")
def services(mesh):
    client = mesh.client(SERVICES_MEMBER)
    client.timeout_s = 120
    return client


@pytest.fixture(scope="module")
def residents(services) -> list[str]:
    found = services.bulk("MUNI/012084/resident-registry", "person", None, ["status"], purpose_of(SERVICE))
    return found.column("subject").to_pylist()[:3]


def test_notices_reach_known_persons_only_and_are_recorded_once(mesh, services, residents):
    tag = f"notify-test-{secrets.token_hex(4)}"
    forged = secrets.token_urlsafe(16)[:22]
    before = mesh.audit_size()
    flags = services.notify_table(str(PORTAL), purpose_of(SERVICE), SERVICE, table([*residents, forged], tag))
    assert flags.to_pylist() == [False] * 4  # nobody here has a prior intent for the service
    stored = mesh.rows(
        "notices",
        select(notice_table.c.idempotency_key, notice_table.c.person_ref).where(
            notice_table.c.idempotency_key.like(f"{tag}:%")
        ),
    )
    assert sorted(k for k, _ in stored) == [f"{tag}:0", f"{tag}:1", f"{tag}:2"]  # not the forgery's
    assert not {ref for _, ref in stored} & {*residents, forged}  # the portal's pseudonyms, not the service's
    made = mesh.rows(
        "audit",
        select(records.c.kind, batches.c.subject_count)
        .join(batches, batches.c.position == records.c.position)
        .where(records.c.position >= before),
    )
    assert ("notice", 3) in made
    again = services.notify_table(str(PORTAL), purpose_of(SERVICE), SERVICE, table(residents, tag))
    assert len(again) == 3
    assert (
        mesh.rows(
            "notices",
            select(func.count()).select_from(notice_table).where(notice_table.c.idempotency_key.like(f"{tag}:%")),
        )[0][0]
        == 3
    )  # a resend adds nothing


def test_a_bad_row_is_refused_with_its_number_and_nothing_is_sent(mesh, services, residents):
    tag = f"notify-bad-{secrets.token_hex(4)}"
    bad = table(residents, tag, link=["/inbox", "//evil.example/", "/inbox"])
    with pytest.raises(HubError) as refused:
        services.notify_table(str(PORTAL), purpose_of(SERVICE), SERVICE, bad)
    assert refused.value.status == 400 and "notice 1: link is a path on the portal" in refused.value.problem["detail"]
    assert (
        mesh.rows(
            "notices",
            select(func.count()).select_from(notice_table).where(notice_table.c.idempotency_key.like(f"{tag}:%")),
        )[0][0]
        == 0
    )


def test_a_member_no_rule_allows_cannot_write_to_inboxes(mesh, residents):
    agency = mesh.client("MUNI/012084/local-tax")
    with pytest.raises(HubError) as refused:
        agency.notify_table(str(PORTAL), purpose_of(SERVICE), SERVICE, table(residents, "not-allowed"))
    assert refused.value.status == 403
