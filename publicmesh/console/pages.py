"""The console's pages: overview, review queue, one case, and the decisions taken on it."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import Engine
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from publicmesh.console import cases
from publicmesh.console.cases import Refused

log = logging.getLogger(__name__)
PAGE = 50
_ID = re.compile(r"^[0-9a-zA-Z_-]{1,32}$")
DONE = ("reviewed", "approved", "rejected", "returned")


def register(app: FastAPI, engine: Engine, *, render, current, posted, not_found, forbidden, notices=None) -> None:
    def reviewer(request: Request):
        """The session of municipal staff: an operator (national, no municipality) reviews no cases (403)."""
        session = current(request)
        if not session.municipality:
            raise forbidden("err_municipal")
        return session

    def case_or_404(session, application_id: str) -> dict:
        if not _ID.match(application_id):
            raise not_found()
        try:
            with engine.connect() as conn:
                return cases.case(conn, session.municipality, application_id)
        except LookupError:
            raise not_found() from None

    # Plain functions: FastAPI runs them in its thread pool, so database calls do not hold up the event loop.
    @app.get("/")
    def dashboard(request: Request):
        session = current(request)
        if not session.municipality:  # a national operator has no municipality's cases, only publishing
            return RedirectResponse("/publish", status_code=303)
        with engine.connect() as conn:
            figures = cases.figures(conn, session.municipality)
        return render(
            request,
            "dashboard.html",
            session,
            active="dashboard",
            figures=figures,
            total=sum(figures.by_status.values()),
        )

    @app.get("/queue")
    def review_queue(request: Request):
        session = reviewer(request)
        page = request.query_params.get("page", "1")
        page = max(int(page), 1) if page.isdigit() and len(page) < 7 else 1
        with engine.connect() as conn:
            rows, total = cases.queue(conn, session.municipality, offset=(page - 1) * PAGE, limit=PAGE)
        return render(
            request,
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

    @app.get("/cases/{application_id}")
    def one_case(request: Request, application_id: str):
        session = reviewer(request)
        found = case_or_404(session, application_id)
        done = request.query_params.get("done")
        return render(request, "case.html", session, active="queue", done=done if done in DONE else None, **found)

    def take(session, application_id: str, action: str, reason: str) -> str:
        with engine.begin() as conn:  # one transaction: a refusal leaves nothing half-done
            if action == "approve":
                return cases.approve(conn, session.municipality, application_id, session)
            if action == "reject":
                return cases.reject(conn, session.municipality, application_id, session, reason)
            return cases.send_back(conn, session.municipality, application_id, session, reason)

    async def decide(request: Request, application_id: str, action: str):
        session = reviewer(request)
        form = await posted(request, session)
        if not _ID.match(application_id):
            raise not_found()
        try:
            outcome = await run_in_threadpool(take, session, application_id, action, form.get("reason", ""))
        except LookupError:
            raise not_found() from None
        except Refused as refused:
            log.info("console: %s refused to %s on %s (%s)", action, session.username, application_id, refused.code)
            found = await run_in_threadpool(case_or_404, session, application_id)
            return render(
                request,
                "case.html",
                session,
                refused.status,
                active="queue",
                error=refused.code,
                failed_action=action,
                reason_text=form.get("reason", ""),
                **found,
            )
        log.info("console: %s %s application %s", session.username, outcome, application_id)
        # The decision is committed with its notice; sending it after the answer keeps staff from waiting on the hub.
        send = BackgroundTask(notices.send_pending) if notices is not None and outcome != "reviewed" else None
        return RedirectResponse(f"/cases/{application_id}?done={outcome}", status_code=303, background=send)

    @app.post("/cases/{application_id}/approve")
    async def approve(request: Request, application_id: str):
        return await decide(request, application_id, "approve")

    @app.post("/cases/{application_id}/reject")
    async def reject(request: Request, application_id: str):
        return await decide(request, application_id, "reject")

    @app.post("/cases/{application_id}/return")
    async def send_back(request: Request, application_id: str):
        return await decide(request, application_id, "return")
