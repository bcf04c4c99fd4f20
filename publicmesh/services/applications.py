"""Applications: created by one tap on a signed form, by a prior intent, or by a proxy; decided by the rules
or by staff; returned to the person, fixed and signed again (再提出); every change kept in the history and sent to
the person's portal as an event, and a decision also as a notice to the person's inbox (決定通知)."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from publicmesh.applications import forms
from publicmesh.applications.content import signature_digest
from publicmesh.applications.lifecycle import RESUBMITTED, Action, IllegalTransition, Status, move, transition
from publicmesh.identity.certificates import SIGNING, kind_of
from publicmesh.identity.pki import CERTIFICATE_FILE
from publicmesh.problems import Problem
from publicmesh.provider.messaging import emit_many
from publicmesh.services import decisions
from publicmesh.services.offers import offered_to, with_full_form
from publicmesh.services.store import applications, history, offers, utc_now, withdrawals

SERVICES_MEMBER = "GOV/digital/services"
# The moves staff (or the rules) decide, through change(); the person's acts and the payout have their own.
DECISIONS = frozenset({Action.REVIEW, Action.APPROVE, Action.REJECT, Action.RETURN})


def next_status(status: str | None, action: str) -> Status:
    """The lifecycle's next status; a move its table does not hold is refused with a problem (409)."""
    try:
        return transition(status, action)
    except IllegalTransition as exc:
        raise Problem("wrong-state", str(exc)) from None


class SignatureCheck:
    """Checks a signed application against the JPKI trust anchor (the CA certificate relying parties get)."""

    def __init__(self, keys_dir: Path):
        self.path = Path(keys_dir) / CERTIFICATE_FILE
        self._root: x509.Certificate | None = None

    @property
    def root(self) -> x509.Certificate:
        if self._root is None:
            self._root = x509.load_pem_x509_certificate(self.path.read_bytes())
        return self._root

    def verify(self, content: bytes, signed: dict) -> x509.Certificate:
        """The signer's certificate, once the signature over exactly ``content`` verifies under the trust anchor."""
        try:
            certificate = x509.load_pem_x509_certificate(signed["certificate"].encode())
            certificate.verify_directly_issued_by(self.root)
            now = utc_now()
            if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
                raise ValueError("the certificate is not valid now")
            if kind_of(certificate) != SIGNING:
                raise ValueError("not a signing certificate (署名用電子証明書)")
            if base64.b64decode(signed["content"]) != content:
                raise ValueError("the signed content is not this offer")
            certificate.public_key().verify(base64.b64decode(signed["signature"]), content, ec.ECDSA(hashes.SHA256()))
            return certificate
        except (KeyError, TypeError, ValueError, InvalidSignature) as exc:
            raise Problem(
                "submission-refused", f"the application's signature does not verify: {exc or 'bad signature'}"
            ) from None


def withdrawn_before(conn: Connection, offer: dict) -> dict | None:
    """The unit's latest withdrawn application of the service, as an application after it names it."""
    row = conn.execute(
        select(applications.c.id, applications.c.signature)
        .where(
            applications.c.service_id == offer["service_id"],
            applications.c.unit_key == offer["unit_key"],
            applications.c.status == Status.WITHDRAWN,
        )
        .order_by(applications.c.submitted_at.desc())
        .limit(1)
    ).first()
    return None if row is None else {"application": row.id, "supersedes": signature_digest(row.signature)}


def offer_for(conn: Connection, offer_id: str, subject: str) -> dict:
    row = conn.execute(select(offers).where(offers.c.id == offer_id)).mappings().first()
    if row is None or row["subject"] != subject:  # another household's offer is as good as none
        raise Problem("submission-refused", "no such offer for this person")
    return with_full_form(conn, row)


def create(
    conn: Connection,
    offer: dict,
    channel: str,
    *,
    signature: dict | None,
    review_over: int,
    automatic: bool,
    actor: str,
    definition: dict | None = None,
) -> dict:
    """One application for the offer's unit; a second one for the same service and unit is refused (409). One
    the rules approve at once gets its approval notice in the same transaction, as a staff approval does."""
    now = utc_now()
    four_eyes = offer["amount_yen"] > review_over
    received = next_status(None, Action.SUBMIT)
    status = next_status(received, Action.APPROVE if automatic and not four_eyes else Action.REVIEW)  # the rules
    values = dict(
        id=secrets.token_hex(8),
        service_id=offer["service_id"],
        unit_key=offer["unit_key"],
        offer_id=offer["id"],
        subject=offer["subject"],
        tenant=offer["tenant"],
        amount_yen=offer["amount_yen"],
        status=status,
        channel=channel,
        signature=orjson.dumps(signature).decode() if signature else None,
        needs_four_eyes=four_eyes,
        submitted_at=now,
        decided_at=now if status == Status.APPROVED else None,
    )
    try:
        with conn.begin_nested():
            conn.execute(insert(applications).values(**values))
    except IntegrityError:
        raise Problem("submission-refused", "an application for this household or person already exists") from None
    conn.execute(insert(history).values(application_id=values["id"], status=received, actor=actor, at=now))
    if status != received:
        conn.execute(insert(history).values(application_id=values["id"], status=status, actor="rules", at=now))
    announce(conn, values, status)
    decisions.record(conn, values, status, definition)  # approved by the rules: the notice; in review: none yet
    return values


def change(
    conn: Connection, application_id: str, action: str, actor: str, reason: str | None = None, tenant: str | None = None
) -> dict:
    """Review, approve, reject or return an application, as the lifecycle allows from its status (else a 409
    problem); staff may only touch their own municipality's (``tenant``). A move that keeps the status (the first
    of two approvals) writes nothing."""
    if action not in DECISIONS:
        raise ValueError(f"{action} is not a decision")
    row = conn.execute(select(applications).where(applications.c.id == application_id)).mappings().first()
    if row is None or (tenant is not None and row["tenant"] != tenant):
        raise LookupError(application_id)
    status = next_status(row["status"], action)
    if status == row["status"]:
        return dict(row)
    now = utc_now()
    values: dict = {"status": status, "reason": reason}
    if status in (Status.APPROVED, Status.REJECTED):
        values["decided_at"] = now
    _moved(conn, application_id, row["status"], values)
    conn.execute(
        insert(history).values(application_id=application_id, status=status, actor=actor, reason=reason, at=now)
    )
    changed = {**row, **values}
    announce(conn, changed, status)
    decisions.record(conn, changed, status)  # approved, rejected or returned: the person's notice, same transaction
    return changed


def resubmit(conn: Connection, application: dict, signature: dict, actor: str) -> dict:
    """A returned application, fixed and signed again: back to received, for staff to review again."""
    status = next_status(application["status"], Action.RESUBMIT)
    values = {"status": status, "reason": None, "signature": orjson.dumps(signature).decode()}
    _moved(conn, application["id"], application["status"], values)
    conn.execute(
        insert(history).values(
            application_id=application["id"], status=status, actor=actor, reason=RESUBMITTED, at=utc_now()
        )
    )
    changed = {**application, **values}
    announce(conn, changed, status)
    return changed


def withdraw(conn: Connection, application: dict, signature: dict, actor: str) -> dict:
    """The person's signed withdrawal: the application is withdrawn and the signature kept with it."""
    next_status(application["status"], Action.WITHDRAW)  # 409 unless its status allows it
    # Guarded by every status a withdrawal may leave, not only the one read: approved meanwhile, it still holds.
    withdrawable, status = move(Action.WITHDRAW)
    done = conn.execute(
        update(applications)
        .where(applications.c.id == application["id"], applications.c.status.in_(withdrawable))
        .values(status=status, reason=None)
    )
    if done.rowcount != 1:  # decided, paid or withdrawn meanwhile
        raise Problem("wrong-state", "the application can no longer be withdrawn")
    now = utc_now()
    conn.execute(
        insert(withdrawals).values(
            application_id=application["id"], signature=orjson.dumps(signature).decode(), actor=actor, at=now
        )
    )
    conn.execute(insert(history).values(application_id=application["id"], status=status, actor=actor, at=now))
    changed = {**application, "status": status, "reason": None}
    announce(conn, changed, status)
    return changed


def _moved(conn: Connection, application_id: str, was: str, values: dict) -> None:
    """The new status written only if the application is still as read; else it moved meanwhile (409)."""
    done = conn.execute(
        update(applications).where(applications.c.id == application_id, applications.c.status == was).values(**values)
    )
    if done.rowcount != 1:
        raise Problem("wrong-state", f"the application is no longer {was}; it changed meanwhile")


def announce(conn: Connection, application: dict, status: str) -> None:
    """The status change, for the hub to carry to the person's portal (converted to the portal's pseudonym)."""
    announce_many(conn, [application], status)


def announce_many(conn: Connection, changed: list[dict], status: str) -> None:
    """The same status change of many applications (e.g. paid in one transfer file), in one statement."""
    # Deferred: the agency definition (which owns the outbox table) looks this module up when it answers; a
    # module-level import here would close the cycle services.agency <-> services.applications.
    from publicmesh.services.agency import AGENCY  # noqa: PLC0415

    emit_many(
        conn,
        AGENCY.outbox,
        SERVICES_MEMBER,
        "application-status",
        [
            (
                a["subject"],
                {
                    "application": a["id"],
                    "service": a["service_id"],
                    "status": status,
                    "reason": a.get("reason"),
                    "amount_yen": a["amount_yen"],
                },
            )
            for a in changed
        ],
    )


def of_subject(conn: Connection, subject: str) -> dict:
    """What the portal shows the person: open offers (not applied for, or only by applications since withdrawn:
    those name the latest withdrawn one, as applying again signs it) and applications with their status."""
    applied = [
        dict(r)
        for r in conn.execute(
            select(applications).where(applications.c.subject == subject).order_by(applications.c.submitted_at.desc())
        ).mappings()
    ]
    live = {a["offer_id"] for a in applied if a["status"] != Status.WITHDRAWN}
    withdrawn: dict[str, dict] = {}
    for a in applied:  # the latest first
        if a["status"] == Status.WITHDRAWN:
            withdrawn.setdefault(
                a["offer_id"], {"application": a["id"], "supersedes": signature_digest(a["signature"])}
            )
    found_offers = [with_full_form(conn, r) for r in conn.execute(offered_to(subject)).mappings()]
    forms_of = {o["id"]: o["form"] for o in found_offers}
    return {
        "offers": [
            _json({**o, **({"reapplies": withdrawn[o["id"]]} if o["id"] in withdrawn else {})})
            for o in found_offers
            if o["id"] not in live
        ],
        "applications": [
            _json(_titled(_to_fix(a, forms_of) if a["status"] == Status.RETURNED else a, forms_of), drop=("signature",))
            for a in applied
        ],
    }


def _titled(application: dict, forms_of: dict) -> dict:
    """The application with its service's title (ja, en) as its offer showed it."""
    form = forms_of.get(application["offer_id"]) or {}
    return {
        **application,
        "title_ja": form.get("title_ja") or application["service_id"],
        "title_en": form.get("title_en") or application["service_id"],
    }


def _to_fix(application: dict, forms_of: dict) -> dict:
    """A returned application with what the portal needs to show it again: the form, what the person typed,
    and the digest of the signature a resubmission replaces."""
    return {
        **application,
        "form": forms_of.get(application["offer_id"], {}),
        "typed": forms.signed_typed(application["signature"]),
        "supersedes": signature_digest(application["signature"]),
    }


def _json(row: dict, drop: tuple[str, ...] = ()) -> dict:
    return {str(k): (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items() if k not in drop}
