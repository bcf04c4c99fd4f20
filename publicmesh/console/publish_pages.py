"""The operator's pages: the definitions to publish, checking an uploaded or chosen file, and a run's progress
and summary. Only staff with the operator role; municipal staff get 403."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from publicmesh.console import openapi as doc
from publicmesh.console import publishing
from publicmesh.console.deps import ConsoleDep, NotFound, Operator, Posted, Render, RenderDep
from publicmesh.console.publishing import Busy, Publisher
from publicmesh.services.definition import DefinitionError

log = logging.getLogger(__name__)
_RUN_ID = re.compile(r"^[0-9a-f]{16}$")
router = APIRouter()


class Refused(Exception):
    """A publish request the page answers with a message (``key`` in texts) and an HTTP status."""

    def __init__(self, key: str, status: int):
        self.key, self.status = key, status
        super().__init__(key)


def page(render: Render, publisher: Publisher, engine, session, status: int = 200, **context):
    with engine.connect() as conn:
        listing = publishing.catalogue(conn, publisher.folder)
        runs = publishing.recent(conn)
    return render(
        "publish.html",
        session,
        status,
        active="publish",
        listing=listing,
        runs=runs,
        max_mb=publishing.MAX_UPLOAD // 1_000_000,
        **context,
    )


async def get_publisher(console: ConsoleDep) -> Publisher:
    if console.publisher is None:  # the publish router is included only with a publisher; this is a wiring fault
        raise RuntimeError("this console has no publisher")
    return console.publisher


PublisherDep = Annotated[Publisher, Depends(get_publisher)]


def run_or_404(publisher: Publisher, run_id: str) -> publishing.Run:
    run = publisher.get(run_id) if _RUN_ID.match(run_id) else None
    if run is None:
        raise NotFound()
    return run


@router.get("/publish", responses=doc.PAGE)
def publish_page(session: Operator, console: ConsoleDep, publisher: PublisherDep, render: RenderDep):
    return page(render, publisher, console.engine, session)


@router.post("/publish", responses=doc.PUBLISH_ANSWERS, openapi_extra=doc.PUBLISH)
async def publish(
    request: Request, session: Operator, form: Posted, console: ConsoleDep, publisher: PublisherDep, render: RenderDep
):
    def show(status: int = 200, **context):
        return run_in_threadpool(page, render, publisher, console.engine, session, status, **context)

    try:
        text, name, path = await _chosen(publisher, form, (await request.form()).get("file"))
    except Refused as refused:
        return await show(refused.status, error=refused.key)
    try:
        definition = await run_in_threadpool(publishing.check, text, name)
    except DefinitionError as exc:
        log.info("console: %s checked %s: %d problems", session.username, name, len(exc.problems))
        return await show(422, source=name, problems=exc.problems)
    if form.get("action") != "publish":
        return await show(source=name, valid=definition)
    try:
        run = await run_in_threadpool(_start, publisher, text, definition, path, name, session.username)
    except Busy as busy:
        log.info(
            "console: %s asked to publish %s while run %s runs",
            session.username,
            name,
            busy.run.id if busy.run else "?",
        )
        return await show(409, busy=busy.run)
    return RedirectResponse(f"/publish/runs/{run.id}", status_code=303)


@router.get("/publish/runs/{run_id}", responses=doc.PAGE)
def run_page(run_id: str, session: Operator, publisher: PublisherDep, render: RenderDep):
    run = run_or_404(publisher, run_id)
    return render("publish_run.html", session, active="publish", run=run, phases=publishing.PHASES)


@router.get("/publish/runs/{run_id}/progress", responses=doc.PAGE)
def run_progress(run_id: str, _session: Operator, publisher: PublisherDep):
    return JSONResponse(run_or_404(publisher, run_id).progress_json())


async def _chosen(publisher: Publisher, form: dict[str, str], upload) -> tuple[str, str, Path | None]:
    """The YAML text, the name to show and, for a packaged definition, its path; or Refused."""
    name = form.get("service", "")
    if name:
        path = publishing.packaged(publisher.folder).get(name)
        if path is None:
            raise Refused("err_no_definition", 404)
        return path.read_text(encoding="utf-8"), path.name, path
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise Refused("err_no_file", 400)
    data = await upload.read(publishing.MAX_UPLOAD + 1)
    if len(data) > publishing.MAX_UPLOAD:
        raise Refused("err_too_large", 413)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("err_not_utf8", 400) from None
    return text, Path(upload.filename).name[:128], None


def _start(publisher: Publisher, text: str, definition, path: Path | None, source: str, username: str):
    return publisher.start(path or publisher.stage(text, definition), definition, source, username)
