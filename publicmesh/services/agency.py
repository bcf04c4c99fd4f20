"""The services part as a mesh member (GOV/digital/services): it holds offers and applications, answers the
portal's self-information query about them, takes submissions through the hub, and emits status events."""

from __future__ import annotations

import functools

from sqlalchemy import Connection

from publicmesh.provider.datasets import Attribute, Dataset
from publicmesh.provider.definition import AgencyDefinition
from publicmesh.services.store import metadata, upgrade

# Every part loads the catalog of agencies, this one included: what the services part runs (applications, the
# rules, Polars, the member client) is imported when it first runs, so the other parts do not load it
# (tests/unit/agencies/test_imports.py); hence the imports inside functions here (noqa: PLC0415).
_LIST = {"type": "array", "items": {"type": "object"}}


def _applications_lookup(conn: Connection, _tenant, subjects, attributes) -> dict[str, dict]:
    from publicmesh.services import applications as apps  # noqa: PLC0415

    out = {}
    for subject in subjects:
        found = apps.of_subject(conn, subject)
        if found["offers"] or found["applications"]:
            out[subject] = {a: found[a] for a in attributes}
    return out


def _start(engine, settings):
    """When the services part starts: a store of an earlier version is upgraded, submissions get their trust anchor
    and hub client ready, and the worker that turns the births the registry reported into offers for the newborn's
    household starts."""
    from publicmesh.protocol.client import MeshClient  # noqa: PLC0415
    from publicmesh.services.publish import SERVICES_MEMBER  # noqa: PLC0415
    from publicmesh.services.triggers import BirthWorker  # noqa: PLC0415

    upgrade(engine)
    _submissions().prepare(settings)
    client = MeshClient.for_member(settings, SERVICES_MEMBER, settings.hub_url)
    return BirthWorker(engine, client)


def _seed(*_args) -> None:
    """Nothing to seed: offers appear when a service is published."""


@functools.cache
def _submissions():
    from publicmesh.services.submissions import Submissions  # noqa: PLC0415

    return Submissions()


def _submit(conn: Connection, tenant, subject: str, payload: dict) -> dict:
    return _submissions()(conn, tenant, subject, payload)


def _on_birth(*args) -> None:
    from publicmesh.services.triggers import on_birth  # noqa: PLC0415

    on_birth(*args)


AGENCY = AgencyDefinition(
    "services",
    "公共サービス（共通SaaS）",
    "Public services (common SaaS)",
    metadata,
    {
        "applications": Dataset(
            "applications",
            "給付・申請",
            "Benefits and applications",
            (
                Attribute(
                    "offers", _LIST, "受け取れる給付（未申請）", "Benefits you can receive (not applied for)", "benefit"
                ),
                Attribute("applications", _LIST, "申請と状況", "Applications and their status", "benefit"),
            ),
            custom_lookup=_applications_lookup,
            tenant_column=None,
        ),
        "application": Dataset(
            "application",
            "申請の受付",
            "Submitting an application",
            (Attribute("submit", {"type": "object"}, "申請", "Submission", "benefit"),),
            custom_lookup=lambda *_: {},
            tenant_column=None,
        ),
    },
    _seed,
    gov_code="digital",
    writers={"application": _submit},
    handlers={"birth": _on_birth},
    worker=_start,
)
