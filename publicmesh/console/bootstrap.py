"""Wires the staff console: login with password and TOTP, then pages scoped to the staff member's municipality, and
the operator's pages for publishing a service. Every dependency is built here; the routers get them through
``console.deps``."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from publicmesh import design
from publicmesh.console import login_pages, pages, publish_pages
from publicmesh.console.deps import (
    HERE,
    Console,
    CsrfRefused,
    Forbidden,
    LoginRequired,
    NotFound,
    Render,
    language,
    make_templates,
)
from publicmesh.console.openapi import documented
from publicmesh.console.publishing import Publisher, PublishProgress
from publicmesh.console.sessions import StaffSessions
from publicmesh.console.staff import StaffDirectory
from publicmesh.design.api_docs import mount_api_docs
from publicmesh.design.observability import observe, present, store_answers
from publicmesh.problems import AnswerErrors, invalid_request
from publicmesh.protocol.client import MeshClient
from publicmesh.services.applications import SERVICES_MEMBER
from publicmesh.services.decisions import NoticeSender
from publicmesh.services.operator import publish_file
from publicmesh.services.store import metadata
from publicmesh.settings import Settings
from publicmesh.storage import engine_for, schema_once

log = logging.getLogger(__name__)
RESEND_S = 10  # how often decision notices the hub did not take are tried again


def bootstrap(settings: Settings, hub_url: str) -> FastAPI:
    """The console of this machine's mesh: the services store, its staff accounts, and decision notices sent
    through the hub as the services member (GOV/digital/services), whose staff face the console is."""
    engine = schema_once(metadata)(engine_for("services", settings))
    client = MeshClient.for_member(settings, SERVICES_MEMBER, hub_url)
    client.timeout_s = 10
    publisher = Publisher(
        engine,
        lambda path, progress: publish_file(settings, path, progress=progress),
        settings.data_dir / "uploaded-definitions",
    )
    # Plain HTTP on localhost, as every part: secure (__Host-) cookies wait for a TLS setting in the settings.
    return create_app(
        engine,
        StaffDirectory.open(engine, settings.keys_dir),
        notices=NoticeSender(engine, client),
        publisher=publisher,
    )


def create_app(
    engine_services: Engine, staff, *, secure_cookies: bool = False, notices=None, publisher: Publisher | None = None
) -> FastAPI:
    """The console on the services store (``engine_services``) and a staff directory (``staff.staff_login``);
    ``notices.send_pending()``, if given, sends the decision notices after each decision and periodically;
    ``publisher`` (a publishing.Publisher), if given, serves the operator's publish pages."""
    console = Console(
        engine_services,
        staff,
        StaffSessions(),
        make_templates(),
        secure_cookies=secure_cookies,
        notices=notices,
        publisher=publisher,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        resend = asyncio.create_task(_resend_forever(notices)) if notices is not None else None
        yield
        if resend is not None:
            resend.cancel()

    app = FastAPI(
        title="Staff console (職員用画面)",
        version="1",
        description="The staff side of the services part: municipal staff review and decide applications, "
        "operators publish services. HTML pages behind a staff session; a form that does not validate is answered "
        "as an RFC 9457 problem.",
        docs_url=None,  # FastAPI's pages load their scripts from a public CDN: a page made here instead
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.console = console
    design.mount(app)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.middleware("http")(headers)
    app.add_exception_handler(LoginRequired, to_login)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(CsrfRefused, csrf_refused)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_middleware(AnswerErrors, handler=failed)
    app.include_router(login_pages.router)
    app.include_router(pages.router)
    if publisher is not None:
        app.include_router(publish_pages.router)
    mount_api_docs(app)
    app.openapi = documented(app.openapi)  # type: ignore[method-assign]
    metrics = observe(app, "console", [("services store", store_answers(engine_services)), ("staff", present(staff))])
    if publisher is not None:
        metrics.registry.register(PublishProgress(publisher))
    return app


async def headers(request: Request, call_next):
    response = await call_next(request)
    response.headers.setdefault(
        "content-security-policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'"
    )
    response.headers.setdefault("x-content-type-options", "nosniff")
    response.headers.setdefault("referrer-policy", "no-referrer")
    if not request.url.path.startswith("/static/"):
        response.headers.setdefault("cache-control", "no-store")  # case data must not stay in shared caches
    return response


def _error_page(request: Request, session, status: int, title: str, detail: str = ""):
    """The error page (the exception handlers run outside the routers' dependencies)."""
    render = Render(request, request.app.state.console, language(request))
    return render("error.html", session, status, title=render.t(title), detail=render.t(detail) if detail else "")


def _session(request: Request):
    return request.app.state.console.session_of(request)


async def to_login(_request: Request, _exc: Exception):
    return RedirectResponse("/login", status_code=303)


async def not_found(request: Request, _exc: Exception):
    session = _session(request)
    log.warning(
        "console: %s asked for %s (not theirs or not there)",
        session.username if session else "anonymous",
        request.url.path,
    )
    return _error_page(request, session, 404, "not_found")


async def forbidden(request: Request, exc: Exception):
    why = exc.why if isinstance(exc, Forbidden) else "err_operator"
    return _error_page(request, _session(request), 403, "forbidden", why)


async def csrf_refused(request: Request, _exc: Exception):
    log.warning("console: POST %s without a matching CSRF token", request.url.path)
    return _error_page(request, _session(request), 403, "error", "err_csrf")


async def invalid(request: Request, exc: Exception):
    """A form or query that does not validate: an RFC 9457 problem, not FastAPI's bare 422."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return invalid_request(list(errors)).response(request.url.path, language(request))


async def failed(request: Request, _exc: Exception):
    """An unhandled error: logged, and the error page (the connection stays open, problems.AnswerErrors)."""
    log.exception("console error on %s", request.url.path)
    return _error_page(request, _session(request), 500, "error", "try_later")


async def _resend_forever(notices) -> None:
    """Notices left pending (the hub was down, or the console died after a decision) go out on a later run."""
    while True:
        try:
            await run_in_threadpool(notices.send_pending)
        except Exception:  # keep retrying whatever went wrong; the next run may succeed
            log.exception("console: sending decision notices failed")
        await asyncio.sleep(RESEND_S)
