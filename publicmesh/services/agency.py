"""The services part as a mesh member (GOV/digital/services): it holds offers and applications, answers the
portal's self-information query about them, takes submissions through the hub, and emits status events."""

from __future__ import annotations

import yaml
from sqlalchemy import Connection, select

from publicmesh.agencies.datasets import Attribute, Dataset
from publicmesh.agencies.definition import AgencyDefinition
from publicmesh.problems import Problem
from publicmesh.services import applications as apps
from publicmesh.services.store import metadata, publications
from publicmesh.services.triggers import on_birth

_LIST = {"type": "array", "items": {"type": "object"}}


def _applications_lookup(conn: Connection, _tenant, subjects, attributes) -> dict[str, dict]:
    out = {}
    for subject in subjects:
        found = apps.of_subject(conn, subject)
        if found["offers"] or found["applications"]:
            out[subject] = {a: found[a] for a in attributes}
    return out


def workflow_of(conn: Connection, service_id: str) -> dict:
    row = conn.execute(select(publications.c.definition).where(publications.c.service_id == service_id)
                       .order_by(publications.c.version.desc()).limit(1)).first()
    if row is None:
        raise Problem("submission-refused", f"service {service_id} is not published")
    return yaml.safe_load(row[0]).get("workflow", {})


class Submissions:
    """What the portal submits through the hub for one person: apply (signed, or as a proxy) or withdraw."""

    def __init__(self):
        self.signatures = None  # SignatureCheck on the JPKI trust anchor in this part's keys folder, made on first use

    def __call__(self, conn: Connection, _tenant, subject: str, payload: dict) -> dict:
        action = payload.get("action")
        by_proxy = payload.get("proxy") is True  # the portal says so only while someone acts under a mandate
        actor = "proxy" if by_proxy else "resident"
        if action == "apply":
            offer = apps.offer_for(conn, str(payload.get("offer", "")), subject)
            if self.signatures is None:
                from publicmesh.settings import get_settings

                self.signatures = apps.SignatureCheck(get_settings().keys_dir)
            self.signatures.verify(apps.application_content(offer), payload.get("signed") or {})
            workflow = workflow_of(conn, offer["service_id"])
            created = apps.create(conn, offer, "proxy" if by_proxy else "tap", signature=payload["signed"],
                                  review_over=int(workflow.get("review_over", 0)),
                                  automatic=bool(workflow.get("automatic", False)), actor=actor)
            return {"application": created["id"], "status": created["status"]}
        if action == "withdraw":
            row = conn.execute(select(apps.applications).where(
                apps.applications.c.id == str(payload.get("application", "")),
                apps.applications.c.subject == subject)).mappings().first()
            if row is None or row["status"] not in apps.OPEN + ("approved",):
                raise Problem("submission-refused", "no open application of this person to withdraw")
            changed = apps.change(conn, row["id"], "withdrawn", actor)
            return {"application": changed["id"], "status": "withdrawn"}
        raise Problem("submission-refused", f"unknown action {action!r}")


def _birth_worker(engine, settings):
    """The services part's worker: births the registry reported become offers for the newborn's household."""
    from publicmesh.mesh.client import MeshClient
    from publicmesh.runtime.topology import part
    from publicmesh.services.publish import SERVICES_MEMBER
    from publicmesh.services.triggers import BirthWorker

    client = MeshClient.for_member(settings, SERVICES_MEMBER, part(settings, "hub").url(settings))
    return BirthWorker(engine, client)


def _seed(*_args) -> None:
    """Nothing to seed: offers appear when a service is published."""


SUBMISSIONS = Submissions()

AGENCY = AgencyDefinition(
    "services", "公共サービス（共通SaaS）", "Public services (common SaaS)", metadata,
    {
        "applications": Dataset(
            "applications", "給付・申請", "Benefits and applications",
            (Attribute("offers", _LIST, "受け取れる給付（未申請）", "Benefits you can receive (not applied for)", "benefit"),
             Attribute("applications", _LIST, "申請と状況", "Applications and their status", "benefit")),
            custom_lookup=_applications_lookup, tenant_column=None),
        "application": Dataset(
            "application", "申請の受付", "Submitting an application",
            (Attribute("submit", {"type": "object"}, "申請", "Submission", "benefit"),),
            custom_lookup=lambda *_: {}, tenant_column=None),
    },
    _seed, gov_code="digital", writers={"application": SUBMISSIONS}, handlers={"birth": on_birth},
    worker=_birth_worker,
)
