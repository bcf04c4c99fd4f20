"""The application lifecycle's table, without a database: every legal move leads where it should, every other
(status, action) pair is refused, and the sets and labels the parts use follow from it."""

from __future__ import annotations

import ast
import itertools
import sys
from pathlib import Path

import pytest

from publicmesh.applications import lifecycle
from publicmesh.applications.lifecycle import Action, IllegalTransition, Status

R, IR, AP, RJ, PD, RT, WD = (
    "received",
    "in-review",
    "approved",
    "rejected",
    "paid",
    "returned",
    "withdrawn",
)

# The table as the services part lives it, written out by hand: (status before, action) → status after.
LEGAL = {
    (None, "submit"): R,  # signed (or applied by a prior intent)
    (R, "review"): IR,  # the rules or a first reviewer take it up
    (IR, "review"): IR,  # the first of two approvals: it stays in review
    (R, "approve"): AP,  # by the rules, or by staff once resubmitted
    (IR, "approve"): AP,
    (R, "reject"): RJ,
    (IR, "reject"): RJ,
    (RT, "reject"): RJ,
    (R, "return"): RT,
    (IR, "return"): RT,
    (RT, "resubmit"): R,
    (R, "withdraw"): WD,
    (IR, "withdraw"): WD,
    (RT, "withdraw"): WD,
    (AP, "withdraw"): WD,  # until it is paid
    (AP, "pay"): PD,
    (R, "revise"): R,  # 額改定: the award grows by a claim of its own; the status stays
    (IR, "revise"): IR,
    (RT, "revise"): RT,
    (AP, "revise"): AP,
    (PD, "revise"): PD,
}
EVERY_STATUS = (None, R, IR, AP, RJ, PD, RT, WD)
EVERY_ACTION = ("submit", "review", "approve", "reject", "return", "resubmit", "withdraw", "pay", "revise")
ILLEGAL = [pair for pair in itertools.product(EVERY_STATUS, EVERY_ACTION) if pair not in LEGAL]


def test_the_states_and_actions_are_the_ones_written_here():
    assert lifecycle.STATUSES == (R, IR, AP, RJ, PD, RT, WD)
    assert tuple(Action) == EVERY_ACTION
    assert len(LEGAL) + len(ILLEGAL) == 8 * 9 and len(ILLEGAL) == 51


@pytest.mark.parametrize(("status", "action"), sorted(LEGAL, key=str))
def test_a_legal_move_leads_where_the_table_says(status, action):
    assert lifecycle.transition(status, action) == LEGAL[(status, action)]
    assert lifecycle.allows(status, action)
    # the members as the parts pass them (a row's plain string, or the enum) are one and the same
    as_enum = None if status is None else Status(status)
    assert lifecycle.transition(as_enum, Action(action)) == LEGAL[(status, action)]


@pytest.mark.parametrize(("status", "action"), ILLEGAL, ids=[f"{s}-{a}" for s, a in ILLEGAL])
def test_every_other_move_is_refused(status, action):
    with pytest.raises(IllegalTransition) as refused:
        lifecycle.transition(status, action)
    assert (refused.value.status, refused.value.action) == (status, action)
    assert str(refused.value).endswith(f"; this one is {status or 'not there'}")
    assert not lifecycle.allows(status, action)


@pytest.mark.parametrize(("status", "action"), [("paid ", "pay"), ("approved", "approve "), ("unknown", "submit")])
def test_an_unknown_status_or_action_is_refused(status, action):
    with pytest.raises(IllegalTransition):
        lifecycle.transition(status, action)


@pytest.mark.parametrize(
    ("status", "action", "why"),
    [
        (RT, "return", "only a received or in-review application can be returned; this one is returned"),
        (R, "resubmit", "only a returned application can be resubmitted; this one is received"),
        (
            PD,
            "withdraw",
            "only a received, in-review, approved or returned application can be withdrawn; this one is paid",
        ),
        (IR, "pay", "only an approved application can be paid; this one is in-review"),
        (R, "submit", "only a new application can be submitted; this one is received"),
        (None, "approve", "only a received or in-review application can be approved; this one is not there"),
        (R, "archive", "'archive' is not an action on an application"),
    ],
)
def test_a_refusal_says_what_would_have_been_allowed(status, action, why):
    with pytest.raises(IllegalTransition) as refused:
        lifecycle.transition(status, action)
    assert str(refused.value) == why and isinstance(refused.value, ValueError)


def test_every_status_is_reached_from_a_submission_and_the_final_ones_lead_nowhere_but_revise():
    reached, frontier = set(), {lifecycle.transition(None, "submit")}
    while frontier:
        reached |= frontier
        frontier = {LEGAL[(s, a)] for (s, a) in LEGAL if s in frontier} - reached
    assert reached == set(lifecycle.STATUSES)
    for final in (RJ, WD):
        assert not any(lifecycle.allows(final, a) for a in EVERY_ACTION)
    assert [a for a in EVERY_ACTION if lifecycle.allows(PD, a)] == ["revise"]


def test_the_sets_the_parts_use_follow_from_the_table():
    def sources(action):
        return tuple(s for s in lifecycle.STATUSES if (s, action) in LEGAL)

    assert lifecycle.OPEN == sources("reject") == (R, IR, RT)
    assert lifecycle.DECIDABLE == sources("approve") == sources("return") == (R, IR)
    assert lifecycle.WITHDRAWABLE == sources("withdraw") == (R, IR, AP, RT)
    assert lifecycle.RESUBMITTABLE == (RT,) and lifecycle.PAYABLE == (AP,)
    assert lifecycle.AWARDED == sources("revise") == (R, IR, AP, PD, RT)
    assert lifecycle.sources("submit") == ()  # only from no application at all


def test_a_bulk_move_has_its_sources_and_one_target():
    assert lifecycle.move(Action.PAY) == ((AP,), PD)
    assert lifecycle.move(Action.WITHDRAW) == ((R, IR, AP, RT), WD)
    assert lifecycle.move(Action.REVIEW) == ((R, IR), IR)
    with pytest.raises(ValueError, match="revise"):
        lifecycle.move(Action.REVISE)  # each status stays what it was


def test_every_status_has_its_labels_in_both_languages_for_staff_and_for_the_person():
    staff, person = lifecycle.text_entries(), lifecycle.text_entries(for_person=True)
    assert set(staff) == set(person) == {f"status_{s}" for s in lifecycle.STATUSES}
    assert all(ja and en and ja != en for ja, en in [*staff.values(), *person.values()])
    assert staff["status_approved"] == person["status_approved"] == ("支給決定", "Approved")
    assert staff["status_returned"] == ("差戻し", "Returned")
    assert person["status_returned"] == ("差戻し（修正してください）", "Returned (please fix)")


def test_the_module_is_pure():
    """Only the standard library: no database, no HTTP, no web framework."""
    tree = ast.parse(Path(lifecycle.__file__).read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
