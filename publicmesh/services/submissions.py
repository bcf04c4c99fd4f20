"""What the portal submits through the hub for one person (申請の受付): apply, resubmit a returned application, or
withdraw. Every application and resubmission is signed with a JPKI signing key over exactly what was shown."""

from __future__ import annotations

import yaml
from sqlalchemy import Connection, select

from publicmesh.problems import Problem
from publicmesh.services import applications as apps
from publicmesh.services.forms import TypedFieldError, typed_values
from publicmesh.services.store import applications, offers, publications


def workflow_of(conn: Connection, service_id: str) -> dict:
    row = conn.execute(select(publications.c.definition).where(publications.c.service_id == service_id)
                       .order_by(publications.c.version.desc()).limit(1)).first()
    if row is None:
        raise Problem("submission-refused", f"service {service_id} is not published")
    return yaml.safe_load(row[0]).get("workflow", {})


def typed_of(offer: dict, payload: dict) -> dict[str, str]:
    try:
        return typed_values(offer["form"], payload.get("typed"))
    except TypedFieldError as exc:
        raise Problem("submission-refused", f"the form's field {exc.field['name']!r} is {exc.code}") from None


class Submissions:
    """The services part's writer for the 'application' dataset."""

    def __init__(self):
        self._signatures = None  # SignatureCheck on the JPKI trust anchor in this part's keys folder, made on first use

    @property
    def signatures(self) -> apps.SignatureCheck:
        if self._signatures is None:
            from publicmesh.settings import get_settings

            self._signatures = apps.SignatureCheck(get_settings().keys_dir)
        return self._signatures

    def __call__(self, conn: Connection, _tenant, subject: str, payload: dict) -> dict:
        action = payload.get("action")
        by_proxy = payload.get("proxy") is True  # the portal says so only while someone acts under a mandate
        actor = "proxy" if by_proxy else "resident"
        if action == "apply":
            return self.apply(conn, subject, payload, by_proxy, actor)
        if action == "resubmit":
            return self.resubmit(conn, subject, payload, actor)
        if action == "withdraw":
            row = self._application(conn, subject, payload)
            if row is None or row["status"] not in apps.OPEN + ("approved",):
                raise Problem("submission-refused", "no open application of this person to withdraw")
            changed = apps.change(conn, row["id"], "withdrawn", actor)
            return {"application": changed["id"], "status": "withdrawn"}
        raise Problem("submission-refused", f"unknown action {action!r}")

    def apply(self, conn: Connection, subject: str, payload: dict, by_proxy: bool, actor: str) -> dict:
        offer = apps.offer_for(conn, str(payload.get("offer", "")), subject)
        content = apps.application_content(offer, typed=typed_of(offer, payload))
        self.signatures.verify(content, payload.get("signed") or {})
        workflow = workflow_of(conn, offer["service_id"])
        created = apps.create(conn, offer, "proxy" if by_proxy else "tap", signature=payload["signed"],
                              review_over=int(workflow.get("review_over", 0)),
                              automatic=bool(workflow.get("automatic", False)), actor=actor)
        return {"application": created["id"], "status": created["status"]}

    def resubmit(self, conn: Connection, subject: str, payload: dict, actor: str) -> dict:
        """Only the person's own application (or their principal's, for a proxy), and only while it is returned."""
        row = self._application(conn, subject, payload)
        if row is None:  # another person's application is as good as none
            raise Problem("submission-refused", "no such application for this person")
        if row["status"] != "returned":
            raise Problem("wrong-state", f"only a returned application can be resubmitted; this one is {row['status']}")
        offer = dict(conn.execute(select(offers).where(offers.c.id == row["offer_id"])).mappings().one())
        content = apps.application_content(offer, typed=typed_of(offer, payload),
                                           resubmits=(row["id"], apps.signature_digest(row["signature"])))
        self.signatures.verify(content, payload.get("signed") or {})
        changed = apps.resubmit(conn, row, payload["signed"], actor)
        return {"application": changed["id"], "status": changed["status"]}

    @staticmethod
    def _application(conn: Connection, subject: str, payload: dict) -> dict | None:
        row = conn.execute(select(applications).where(applications.c.id == str(payload.get("application", "")),
                                                      applications.c.subject == subject)).mappings().first()
        return None if row is None else dict(row)
