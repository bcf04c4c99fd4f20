"""Cases (案件) as staff see them: the figures, the review queue, one case, and decisions under four-eyes.

Everything is scoped to one municipality (``tenant``); a case of another one is as good as none (LookupError).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, and_, func, insert, select, update

from publicmesh.applications import forms, lifecycle
from publicmesh.applications.lifecycle import Action, Status
from publicmesh.problems import Problem
from publicmesh.services import applications as apps
from publicmesh.services.offers import full_form
from publicmesh.services.store import applications, history, offers, utc_now

DECIDERS = frozenset({"reviewer", "approver"})
REVIEWED_NOTE = "four-eyes: reviewed"  # the history row of the first of two approvals (status stays in-review)


class Refused(Exception):
    """A decision staff may not take; ``code`` names the message the console shows."""

    def __init__(self, code: str, status: int = 409):
        self.code, self.status = code, status
        super().__init__(code)


@dataclass(frozen=True)
class Figures:
    by_status: dict[str, int]
    decided: int
    average_decision_seconds: float | None
    awaiting_second: int


def figures(conn: Connection, tenant: str) -> Figures:
    """Counts by status, the average submission → decision time, and how many wait for a second approver."""
    counts = dict(
        conn.execute(
            select(applications.c.status, func.count())
            .where(applications.c.tenant == tenant)
            .group_by(applications.c.status)
        ).all()
    )
    decided = and_(applications.c.tenant == tenant, applications.c.decided_at.is_not(None))
    if conn.dialect.name == "postgresql":
        seconds = func.extract("epoch", applications.c.decided_at - applications.c.submitted_at)
    else:
        seconds = (func.julianday(applications.c.decided_at) - func.julianday(applications.c.submitted_at)) * 86400
    n, average = conn.execute(select(func.count(), func.avg(seconds)).where(decided)).one()
    waiting = conn.execute(select(func.count()).where(*_awaiting_second(tenant))).scalar_one()
    return Figures(
        {s: counts.get(s, 0) for s in lifecycle.STATUSES}, n, None if average is None else float(average), waiting
    )


def _awaiting_second(tenant: str) -> tuple:
    return (
        applications.c.tenant == tenant,
        applications.c.status == Status.IN_REVIEW,
        applications.c.needs_four_eyes.is_(True),
        applications.c.reviewed_by.is_not(None),
        applications.c.approved_by.is_(None),
    )


def queue(conn: Connection, tenant: str, *, offset: int = 0, limit: int = 50) -> tuple[list[dict], int]:
    """The municipality's applications waiting for staff or the person, oldest first; and how many in all (received
    includes a returned application the person resubmitted)."""
    where = (applications.c.tenant == tenant, applications.c.status.in_(lifecycle.OPEN))
    total = conn.execute(select(func.count()).where(*where)).scalar_one()
    oldest_first = select(applications).where(*where).order_by(applications.c.submitted_at, applications.c.id)
    rows = conn.execute(oldest_first.offset(offset).limit(limit)).mappings()
    return [dict(r) for r in rows], total


def case(conn: Connection, tenant: str, application_id: str) -> dict:
    """The application, its offer's pre-filled form and exchange records, and its history; LookupError if not ours."""
    row = (
        conn.execute(select(applications).where(applications.c.id == application_id, applications.c.tenant == tenant))
        .mappings()
        .first()
    )
    if row is None:
        raise LookupError(application_id)
    offer = (
        conn.execute(select(offers).where(offers.c.id == row["offer_id"], offers.c.tenant == tenant)).mappings().first()
    )
    form = dict(full_form(conn, offer["form"])) if offer is not None else {}
    typed = forms.shown(form, forms.signed_typed(row["signature"]))  # what the person typed, as signed
    steps = conn.execute(
        select(history).where(history.c.application_id == application_id).order_by(history.c.at, history.c.id)
    ).mappings()
    return {
        "application": dict(row),
        "can": {a: lifecycle.allows(row["status"], a) for a in (Action.APPROVE, Action.REJECT, Action.RETURN)},
        "form": form,
        "fields": form.get("fields", []) + typed,
        "audit_records": [int(p) for p in form.get("audit_records", [])],
        "history": [dict(h) for h in steps],
    }


def approve(conn: Connection, tenant: str, application_id: str, staff) -> str:
    """Approve, or under four-eyes record the first review; returns ``"reviewed"`` or ``"approved"``."""
    row = _open(conn, tenant, application_id, Action.APPROVE)
    _needs_role(staff, DECIDERS)
    if not row["needs_four_eyes"]:
        _claim(conn, application_id, approved_by=staff.username)
        _change(conn, tenant, application_id, Action.APPROVE, staff)
        return "approved"
    if row["reviewed_by"] is None:
        # The first of two: the status stays (or becomes) in review; who reviewed and when is kept.
        _claim(conn, application_id, reviewed_by=staff.username)
        reviewed = _change(conn, tenant, application_id, Action.REVIEW, staff)
        conn.execute(
            insert(history).values(
                application_id=application_id,
                status=reviewed["status"],
                actor=staff.username,
                reason=REVIEWED_NOTE,
                at=utc_now(),
            )
        )
        return "reviewed"
    if row["reviewed_by"] == staff.username:
        raise Refused("err_same_person", 409)
    _needs_role(staff, {"approver"}, "err_approver")
    _claim(conn, application_id, approved_by=staff.username, reviewed=row["reviewed_by"])
    _change(conn, tenant, application_id, Action.APPROVE, staff)
    return "approved"


def reject(conn: Connection, tenant: str, application_id: str, staff, reason: str) -> str:
    _open(conn, tenant, application_id, Action.REJECT)
    _needs_role(staff, DECIDERS)
    _change(conn, tenant, application_id, Action.REJECT, staff, _reason(reason))
    return "rejected"


def send_back(conn: Connection, tenant: str, application_id: str, staff, reason: str) -> str:
    """Return the application to the person to fix; a review done so far no longer counts."""
    _open(conn, tenant, application_id, Action.RETURN)
    _needs_role(staff, DECIDERS)
    reason = _reason(reason)
    conn.execute(update(applications).where(applications.c.id == application_id).values(reviewed_by=None))
    _change(conn, tenant, application_id, Action.RETURN, staff, reason)
    return "returned"


def _open(conn: Connection, tenant: str, application_id: str, action: Action) -> dict:
    """The municipality's application, if its status allows ``action``; LookupError if not ours."""
    row = (
        conn.execute(select(applications).where(applications.c.id == application_id, applications.c.tenant == tenant))
        .mappings()
        .first()
    )
    if row is None:
        raise LookupError(application_id)
    if not lifecycle.allows(row["status"], action):
        raise Refused("err_not_open", 409)
    return dict(row)


def _change(conn: Connection, tenant: str, application_id: str, action: Action, staff, reason: str | None = None):
    """The move through the services part; one the status no longer allows (moved meanwhile) is refused."""
    try:
        return apps.change(conn, application_id, action, staff.username, reason, tenant=tenant)
    except Problem:
        raise Refused("err_changed", 409) from None


def _needs_role(staff, roles, code: str = "err_role") -> None:
    if not set(staff.roles) & set(roles):
        raise Refused(code, 403)


def _reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise Refused("err_reason", 400)
    return reason[:2000]


def _claim(
    conn: Connection,
    application_id: str,
    *,
    reviewed_by: str | None = None,
    approved_by: str | None = None,
    reviewed: str | None = None,
) -> None:
    """Set who reviewed or approved only if nobody did meanwhile, so two staff clicking at once cannot both count."""
    where = [
        applications.c.id == application_id,
        applications.c.status.in_(lifecycle.DECIDABLE),
        applications.c.approved_by.is_(None),
    ]
    if reviewed_by is not None:
        where.append(applications.c.reviewed_by.is_(None))
        values = {"reviewed_by": reviewed_by}
    else:
        reviewer = applications.c.reviewed_by
        where.append(reviewer.is_(None) if reviewed is None else reviewer == reviewed)
        values = {"approved_by": approved_by}
    if conn.execute(update(applications).where(*where).values(**values)).rowcount != 1:
        raise Refused("err_changed", 409)
