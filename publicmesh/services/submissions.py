"""What the portal submits through the hub for one person (申請の受付): apply, resubmit a returned application, or
withdraw. Each is signed with a JPKI signing key over exactly what was shown, and the signer must be the person
(one of their signing certificates in force) or a proxy the signed content names, within one of the principal's
mandates. Who may sign is asked of the portal, which holds identity, through the hub (services-application-signers)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import httpx
from cryptography import x509
from sqlalchemy import Connection, select

from publicmesh import safe_yaml
from publicmesh.applications import content as signed_content
from publicmesh.applications.forms import TypedFieldError, typed_values
from publicmesh.applications.lifecycle import Action, allows
from publicmesh.identity.certificates import basic_information, serial_hex
from publicmesh.problems import Problem
from publicmesh.protocol.client import HubError, MeshClient
from publicmesh.protocol.members import PORTAL
from publicmesh.services import applications as apps
from publicmesh.services.offers import with_full_form
from publicmesh.services.store import applications, offers, publications, utc_now
from publicmesh.settings import get_settings

PROXY_FIELDS = ("name", "certificate", "mandate")
# subject → who may sign for them (from the portal): {"signing_certificates": [serial, ...], "mandates": [...]}
SignerLookup = Callable[[str], dict]


def workflow_of(conn: Connection, service_id: str) -> dict:
    row = conn.execute(
        select(publications.c.definition)
        .where(publications.c.service_id == service_id)
        .order_by(publications.c.version.desc())
        .limit(1)
    ).first()
    if row is None:
        raise Problem("submission-refused", f"service {service_id} is not published")
    return safe_yaml.load(row[0]).get("workflow", {})


def typed_of(offer: dict, payload: dict) -> dict[str, str]:
    try:
        return typed_values(offer["form"], payload.get("typed"))
    except TypedFieldError as exc:
        raise Problem("submission-refused", f"the form's field {exc.field['name']!r} is {exc.code}") from None


def proxy_of(payload: dict) -> dict | None:
    """The proxy a submission names (None: the person themself). A bare flag no longer does: the signed content
    must name the proxy and the mandate."""
    proxy = payload.get("proxy")
    if proxy is None or proxy is False:
        return None
    if (
        not isinstance(proxy, dict)
        or set(proxy) != set(PROXY_FIELDS)
        or not all(isinstance(proxy[k], str) and 0 < len(proxy[k]) <= 200 for k in PROXY_FIELDS)
    ):
        raise Problem(
            "submission-refused", "a proxy's application names the proxy (name and signing certificate) and the mandate"
        )
    return proxy


def check_proxy(
    proxy: dict, certificate: x509.Certificate, mandates: list[dict], at: dt.datetime | None = None
) -> None:
    """The proxy named is the holder of the certificate that signed, and the mandate named is one of the
    principal's, in force, covering applications, held by that certificate's holder."""

    def refuse(why: str):
        raise Problem("submission-refused", f"the proxy's mandate does not hold: {why}")

    if serial_hex(certificate.serial_number) != proxy["certificate"]:
        refuse("the proxy named did not sign it")
    try:
        if basic_information(certificate).name != proxy["name"]:
            refuse("the proxy named is not the signing certificate's holder")
    except ValueError:
        refuse("the signing certificate names nobody")
    at = at or utc_now()
    mandate = next((m for m in mandates if m.get("mandate") == proxy["mandate"]), None)
    if mandate is None:
        refuse(f"no mandate {proxy['mandate']} of this person is in force")
    if "applications" not in mandate.get("scopes", ()):
        refuse("the mandate does not cover applications")
    if not dt.datetime.fromisoformat(mandate["valid_from"]) <= at < dt.datetime.fromisoformat(mandate["valid_until"]):
        refuse("the mandate is not in force")
    if proxy["certificate"] not in mandate.get("proxy_certificates", ()):
        refuse("the mandate is not the signer's")


def check_own(certificate: x509.Certificate, signers: dict) -> None:
    """A person's own application: the certificate that signed is one of theirs, in force (not revoked by a move)."""
    if serial_hex(certificate.serial_number) not in signers.get("signing_certificates", ()):
        raise Problem(
            "submission-refused",
            "the signer is not the applicant: the signing certificate is not one of this person's in force",
        )


class Submissions:
    """The services part's writer for the 'application' dataset. ``signers`` looks up who may sign for a person;
    by default it asks the portal through the hub (rule services-application-signers)."""

    def __init__(self, signers: SignerLookup | None = None):
        self._signatures = None  # SignatureCheck on the JPKI trust anchor in this part's keys folder (see prepare)
        self._signers = signers
        self._client = None

    @property
    def signatures(self) -> apps.SignatureCheck:
        if self._signatures is None:
            self._signatures = apps.SignatureCheck(get_settings().keys_dir)
        return self._signatures

    def prepare(self, settings) -> None:
        """Made when the part starts rather than on the first application: the trust anchor, the hub client and
        its connection pool."""
        self._signatures = apps.SignatureCheck(settings.keys_dir)
        self._signatures.root  # noqa: B018 - read now
        if self._signers is None:
            self._client = MeshClient.for_member(settings, apps.SERVICES_MEMBER, settings.hub_url)
            self._client.timeout_s = 10
            self._client.http()

    def signers(self, subject: str) -> dict:
        if self._signers is not None:
            return self._signers(subject)
        if self._client is None:
            self.prepare(get_settings())
        try:
            return self._client.query(str(PORTAL), "signers", subject, ["signing_certificates", "mandates"], "apply")[
                "data"
            ]
        except (HubError, httpx.HTTPError) as exc:
            raise Problem("submission-refused", f"who may sign for this person could not be checked: {exc}") from None

    def __call__(self, conn: Connection, _tenant, subject: str, payload: dict) -> dict:
        action = payload.get("action")
        if action == "apply":
            return self.apply(conn, subject, payload)
        if action == "resubmit":
            return self.resubmit(conn, subject, payload)
        if action == "withdraw":
            return self.withdraw(conn, subject, payload)
        raise Problem("submission-refused", f"unknown action {action!r}")

    def _verify(self, subject: str, content: bytes, payload: dict, proxy: dict | None) -> str:
        """Checks the signature and the signer: the person themself, or the proxy named within the mandate named.
        Returns who submitted: "resident" or "proxy"."""
        certificate = self.signatures.verify(content, payload.get("signed") or {})
        signers = self.signers(subject)
        if proxy is None:
            check_own(certificate, signers)
            return "resident"
        check_proxy(proxy, certificate, signers.get("mandates", []))
        return "proxy"

    def apply(self, conn: Connection, subject: str, payload: dict) -> dict:
        offer = apps.offer_for(conn, str(payload.get("offer", "")), subject)
        proxy = proxy_of(payload)
        content = signed_content.application_content(
            offer, typed=typed_of(offer, payload), proxy=proxy, reapplies=apps.withdrawn_before(conn, offer)
        )
        actor = self._verify(subject, content, payload, proxy)
        workflow = workflow_of(conn, offer["service_id"])
        created = apps.create(
            conn,
            offer,
            "proxy" if proxy else "tap",
            signature=payload["signed"],
            review_over=int(workflow.get("review_over", 0)),
            automatic=bool(workflow.get("automatic", False)),
            actor=actor,
        )
        return {"application": created["id"], "status": created["status"]}

    def resubmit(self, conn: Connection, subject: str, payload: dict) -> dict:
        """Only the person's own application (or their principal's, for a proxy), and only while it is returned."""
        row = self._application(conn, subject, payload)
        if row is None:  # another person's application is as good as none
            raise Problem("submission-refused", "no such application for this person")
        apps.next_status(row["status"], Action.RESUBMIT)  # a move the lifecycle refuses: 409, before any check
        offer = with_full_form(
            conn, conn.execute(select(offers).where(offers.c.id == row["offer_id"])).mappings().one()
        )
        proxy = proxy_of(payload)
        content = signed_content.application_content(
            offer,
            typed=typed_of(offer, payload),
            proxy=proxy,
            resubmits=(row["id"], signed_content.signature_digest(row["signature"])),
        )
        actor = self._verify(subject, content, payload, proxy)
        changed = apps.resubmit(conn, row, payload["signed"], actor)
        return {"application": changed["id"], "status": changed["status"]}

    def withdraw(self, conn: Connection, subject: str, payload: dict) -> dict:
        """The person's own (or their principal's) application, until it is paid, signed as the application was."""
        row = self._application(conn, subject, payload)
        if row is None or not allows(row["status"], Action.WITHDRAW):
            raise Problem("submission-refused", "no open application of this person to withdraw")
        proxy = proxy_of(payload)
        actor = self._verify(subject, signed_content.withdrawal_content(row, proxy=proxy), payload, proxy)
        changed = apps.withdraw(conn, row, payload["signed"], actor)
        return {"application": changed["id"], "status": changed["status"]}

    @staticmethod
    def _application(conn: Connection, subject: str, payload: dict) -> dict | None:
        row = (
            conn.execute(
                select(applications).where(
                    applications.c.id == str(payload.get("application", "")), applications.c.subject == subject
                )
            )
            .mappings()
            .first()
        )
        return None if row is None else dict(row)
