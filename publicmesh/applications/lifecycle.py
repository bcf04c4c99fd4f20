"""The application lifecycle (申請の状態): its states, the actions that move an application, the one table of
which action leads from which state to which, the sets the parts derive from it, and the states' labels.

Pure: no database, no HTTP. The services part asks ``transition`` before it writes a status, and nothing else
writes one.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    RECEIVED = "received"  # signed and received (again, once a returned application is resubmitted)
    IN_REVIEW = "in-review"  # waiting for staff (under four-eyes, for the first review or the second approval)
    APPROVED = "approved"  # 支給決定: to be paid in the next transfer file
    REJECTED = "rejected"  # 不支給
    PAID = "paid"  # in a transfer file (振込)
    RETURNED = "returned"  # 差戻し: waiting for the person to fix it and sign again
    WITHDRAWN = "withdrawn"  # 取下げ by the person's signature


class Action(StrEnum):
    SUBMIT = "submit"  # the person signs (or a prior intent applies): the application is created
    REVIEW = "review"  # staff or the rules take it into review; under four-eyes, the first approval
    APPROVE = "approve"
    REJECT = "reject"
    RETURN = "return"  # staff send it back to the person with a reason
    RESUBMIT = "resubmit"  # the person fixes a returned application and signs again
    WITHDRAW = "withdraw"  # the person's signed withdrawal, until it is paid
    PAY = "pay"  # marked paid with the transfer file that pays it
    REVISE = "revise"  # 額改定: a birth raises the award; the application keeps its status (a claim is offered)


# How a refusal names what the action does to an application.
_DONE: dict[str, str] = {
    Action.SUBMIT: "submitted",
    Action.REVIEW: "reviewed",
    Action.APPROVE: "approved",
    Action.REJECT: "rejected",
    Action.RETURN: "returned",
    Action.RESUBMIT: "resubmitted",
    Action.WITHDRAW: "withdrawn",
    Action.PAY: "paid",
    Action.REVISE: "revised",
}


class IllegalTransition(ValueError):
    """An action the application's status does not allow."""

    def __init__(self, status: str | None, action: str):
        self.status, self.action = status, action
        super().__init__(_why(status, action))


def _why(status: str | None, action: str) -> str:
    if action not in _DONE:
        return f"{action!r} is not an action on an application"
    allowed = [str(s) for s in sources(action)] or ["new"]  # submit: only where there is no application yet
    which = " or ".join([", ".join(allowed[:-1]), allowed[-1]] if len(allowed) > 1 else allowed)
    article = "an" if which[0] in "aeiou" else "a"
    return f"only {article} {which} application can be {_DONE[action]}; this one is {status or 'not there'}"


def transition(status: str | None, action: str) -> Status:
    """The status ``action`` leads to from ``status`` (None: no application yet); IllegalTransition otherwise."""
    target = _table(status, action)
    if target is None:
        raise IllegalTransition(status, action)
    return target


def _table(status: str | None, action: str) -> Status | None:
    """The transition table: the next status, or None for a move it does not hold."""
    match (status, action):
        case (None, Action.SUBMIT):
            return Status.RECEIVED
        case (Status.RECEIVED | Status.IN_REVIEW, Action.REVIEW):
            return Status.IN_REVIEW  # the first of two approvals keeps an application in review
        case (Status.RECEIVED | Status.IN_REVIEW, Action.APPROVE):
            return Status.APPROVED
        case (Status.RECEIVED | Status.IN_REVIEW | Status.RETURNED, Action.REJECT):
            return Status.REJECTED  # a returned one too: the person need not be waited for to refuse it
        case (Status.RECEIVED | Status.IN_REVIEW, Action.RETURN):
            return Status.RETURNED
        case (Status.RETURNED, Action.RESUBMIT):
            return Status.RECEIVED
        case (Status.RECEIVED | Status.IN_REVIEW | Status.RETURNED | Status.APPROVED, Action.WITHDRAW):
            return Status.WITHDRAWN
        case (Status.APPROVED, Action.PAY):
            return Status.PAID
        case (Status.RECEIVED | Status.IN_REVIEW | Status.RETURNED | Status.APPROVED | Status.PAID, Action.REVISE):
            return Status(status)  # awarded or about to be: the difference is offered as a claim of its own
    return None


def allows(status: str | None, action: str) -> bool:
    return _table(status, action) is not None


def sources(action: str) -> tuple[Status, ...]:
    """The statuses ``action`` may leave, in the order of STATUSES."""
    return tuple(s for s in Status if allows(s, action))


def move(action: str) -> tuple[tuple[Status, ...], Status]:
    """(the statuses ``action`` leaves, the one status it leads to), for a guarded UPDATE of many applications;
    ValueError for an action whose target depends on the status (revise)."""
    from_ = sources(action)
    targets = {transition(s, action) for s in from_}
    if len(targets) != 1:
        raise ValueError(f"{action} does not lead to one status")
    return from_, targets.pop()


STATUSES: tuple[Status, ...] = tuple(Status)
OPEN = sources(Action.REJECT)  # undecided: waiting for staff, or for the person (returned)
DECIDABLE = sources(Action.APPROVE)  # what staff may approve or return (a returned one waits for the person)
WITHDRAWABLE = sources(Action.WITHDRAW)  # until it is decided against, paid or withdrawn
RESUBMITTABLE = sources(Action.RESUBMIT)
PAYABLE = sources(Action.PAY)
AWARDED = sources(Action.REVISE)  # what counts towards a household's award (not rejected, not withdrawn)

RESUBMITTED = "resubmitted"  # the history note of a returned application signed again

# (ja, en), as staff read them.
LABELS: dict[Status, tuple[str, str]] = {
    Status.RECEIVED: ("受付", "Received"),
    Status.IN_REVIEW: ("審査中", "In review"),
    Status.APPROVED: ("支給決定", "Approved"),
    Status.REJECTED: ("不支給", "Rejected"),
    Status.PAID: ("振込済み", "Paid"),
    Status.RETURNED: ("差戻し", "Returned"),
    Status.WITHDRAWN: ("取下げ", "Withdrawn"),
}
# As the person reads them on the portal: a returned application asks them to act.
LABELS_FOR_PERSON: dict[Status, tuple[str, str]] = {
    **LABELS,
    Status.RETURNED: ("差戻し（修正してください）", "Returned (please fix)"),
}


def text_entries(*, for_person: bool = False) -> dict[str, tuple[str, str]]:
    """The labels as the parts' text tables key them: ``status_<status>`` → (ja, en)."""
    return {f"status_{s}": texts for s, texts in (LABELS_FOR_PERSON if for_person else LABELS).items()}
