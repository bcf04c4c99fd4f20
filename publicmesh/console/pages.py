"""The console's pages: overview, review queue, one case, and the decisions taken on it."""

from __future__ import annotations

import logging
import re

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from publicmesh.console import cases
from publicmesh.console import openapi as doc
from publicmesh.console.cases import Refused
from publicmesh.console.deps import ConsoleDep, NotFound, Posted, RenderDep, Reviewer, Staff
from publicmesh.console.sessions import StaffSession

log = logging.getLogger(__name__)
PAGE = 50
_ID = re.compile(r"^[0-9a-zA-Z_-]{1,32}$")
DONE = ("reviewed", "approved", "rejected", "returned")
router = APIRouter()


def case_or_404(engine, session: StaffSession, application_id: str) -> dict:
    if not _ID.match(application_id):
        raise NotFound()
    try:
        with engine.connect() as conn:
            return cases.case(conn, session.municipality, application_id)
    except LookupError:
        raise NotFound() from None


# Plain functions: FastAPI runs them in its thread pool, so database calls do not hold up the event loop.
@router.get("/", responses=doc.PAGE)
def dashboard(session: Staff, console: ConsoleDep, render: RenderDep):
    if not session.municipality:  # a national operator has no municipality's cases, only publishing
        return RedirectResponse("/publish", status_code=303)
    with console.engine.connect() as conn:
        figures = cases.figures(conn, session.municipality)
    return render("dashboard.html", session, active="dashboard", figures=figures, total=sum(figures.by_status.values()))


@router.get("/queue", responses=doc.PAGE, openapi_extra=doc.QUEUE)
def review_queue(request: Request, session: Reviewer, console: ConsoleDep, render: RenderDep):
    page = request.query_params.get("page", "1")
    page = max(int(page), 1) if page.isdigit() and len(page) < 7 else 1
    with console.engine.connect() as conn:
        rows, total = cases.queue(conn, session.municipality, offset=(page - 1) * PAGE, limit=PAGE)
    return render(
        "queue.html",
        session,
        active="queue",
        rows=rows,
        total=total,
        page=page,
        first=(page - 1) * PAGE + 1,
        last=(page - 1) * PAGE + len(rows),
        more=page * PAGE < total,
    )


@router.get("/cases/{application_id}", responses=doc.PAGE, openapi_extra=doc.CASE)
def one_case(request: Request, application_id: str, session: Reviewer, console: ConsoleDep, render: RenderDep):
    found = case_or_404(console.engine, session, application_id)
    done = request.query_params.get("done")
    return render("case.html", session, active="queue", done=done if done in DONE else None, **found)


def take(engine, session: StaffSession, application_id: str, action: str, reason: str) -> str:
    with engine.begin() as conn:  # one transaction: a refusal leaves nothing half-done
        if action == "approve":
            return cases.approve(conn, session.municipality, application_id, session)
        if action == "reject":
            return cases.reject(conn, session.municipality, application_id, session, reason)
        return cases.send_back(conn, session.municipality, application_id, session, reason)


async def decide(console, render, session: StaffSession, form: dict[str, str], application_id: str, action: str):
    if not _ID.match(application_id):
        raise NotFound()
    reason = form.get("reason", "")
    try:
        outcome = await run_in_threadpool(take, console.engine, session, application_id, action, reason)
    except LookupError:
        raise NotFound() from None
    except Refused as refused:
        log.info("console: %s refused to %s on %s (%s)", action, session.username, application_id, refused.code)
        found = await run_in_threadpool(case_or_404, console.engine, session, application_id)
        return render(
            "case.html",
            session,
            refused.status,
            active="queue",
            error=refused.code,
            failed_action=action,
            reason_text=reason,
            **found,
        )
    log.info("console: %s %s application %s", session.username, outcome, application_id)
    # The decision is committed with its notice; sending it after the answer keeps staff from waiting on the hub.
    notices = console.notices
    send = BackgroundTask(notices.send_pending) if notices is not None and outcome != "reviewed" else None
    return RedirectResponse(f"/cases/{application_id}?done={outcome}", status_code=303, background=send)


# The session's role is checked before the form's token (a 403 before a refused CSRF), as the parameters' order.
@router.post("/cases/{application_id}/approve", responses=doc.DECISION_ANSWERS, openapi_extra=doc.DECISION)
async def approve(application_id: str, session: Reviewer, form: Posted, console: ConsoleDep, render: RenderDep):
    return await decide(console, render, session, form, application_id, "approve")


@router.post("/cases/{application_id}/reject", responses=doc.DECISION_ANSWERS, openapi_extra=doc.DECISION)
async def reject(application_id: str, session: Reviewer, form: Posted, console: ConsoleDep, render: RenderDep):
    return await decide(console, render, session, form, application_id, "reject")


@router.post("/cases/{application_id}/return", responses=doc.DECISION_ANSWERS, openapi_extra=doc.DECISION)
async def send_back(application_id: str, session: Reviewer, form: Posted, console: ConsoleDep, render: RenderDep):
    return await decide(console, render, session, form, application_id, "return")
