"""Wires the resident portal: every dependency is built here, once, and the routers get them through
``portal.deps``."""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from publicmesh import design
from publicmesh.audit import load_audit_public_key
from publicmesh.design.observability import observe, present, store_answers
from publicmesh.design.openapi import SIGNED, SIGNED_SCHEME
from publicmesh.identity import open_identity
from publicmesh.notices.channels import LogChannel
from publicmesh.portal import account_pages, application_pages, hub_api, log_view, login_pages, pages
from publicmesh.portal.core import Portal
from publicmesh.portal.deps import NotFound, Render, language, session_of
from publicmesh.portal.hub_api import HubLink
from publicmesh.portal.mesh import PortalMesh
from publicmesh.portal.people import People
from publicmesh.portal.sessions import SessionStore
from publicmesh.portal.status_feed import StatusFeed
from publicmesh.problems import AnswerErrors, Problem, invalid_request, problem_openapi
from publicmesh.settings import Settings
from publicmesh.storage import engine_for
from publicmesh.storage.nonces import SqlNonceStore

log = logging.getLogger(__name__)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Scripts, styles and everything else only from the portal itself (no inline script or style: the pages' scripts
# are files under /static), and no page inside another site's frame.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
HERE = Path(__file__).parent
# In this order: a path two routers could match goes to the first (none does today; the test of routes checks it).
ROUTERS = (
    pages.router,
    log_view.router,
    application_pages.router,
    login_pages.router,
    account_pages.router,
    hub_api.router,
)


def bootstrap(settings: Settings, hub_url: str) -> FastAPI:
    """The portal of this machine's mesh: its stores, its link to the hub, the audit log's key, its templates."""
    portal = Portal(
        settings,
        hub_url,
        mesh=PortalMesh(settings, hub_url),
        sessions=SessionStore(engine_for("identity", settings)),
        people=People(
            open_identity(settings),
            notices=engine_for("notices", settings),
            consents=engine_for("consent", settings),
            accounts=engine_for("accounts", settings),
            channel=LogChannel.for_settings(settings),
        ),
        audit_key=load_audit_public_key(settings.keys_dir),
        status_feed=StatusFeed(),
    )
    # The hub's calls (notices, events) are few and each already writes to a store: a nonce insert beside is cheap.
    nonces = SqlNonceStore(engine_for("identity", settings), settings.signature_max_age_s)
    return create_app(portal, templates(), HubLink.for_settings(settings, nonces))


def templates() -> Jinja2Templates:
    return Jinja2Templates(directory=str(HERE / "templates"))


def create_app(portal: Portal, templates: Jinja2Templates, hub_link: HubLink) -> FastAPI:
    """The portal's app on parts already built: its routers, static files, error pages and the mesh link's life."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await portal.mesh.start()
        yield
        await portal.mesh.close()

    app = FastAPI(title="Resident portal", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.portal, app.state.templates, app.state.hub_link = portal, templates, hub_link
    design.mount(app)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Problem, upstream)
    app.middleware("http")(server_timing)
    # Added first, so innermost: a failure becomes the portal's own 500 page, which still gets the headers below.
    app.add_middleware(AnswerErrors, handler=failed)
    app.middleware("http")(same_origin)
    app.middleware("http")(security_headers)
    for router in ROUTERS:
        app.include_router(router)
    app.openapi = problem_openapi(app.openapi, {SIGNED: SIGNED_SCHEME})  # type: ignore[method-assign]
    checks = [  # read when asked: a test's portal may be a stand-in without them
        ("identity store", lambda: store_answers(portal.sessions.engine)()),
        ("notices store", lambda: store_answers(portal.people.notices)()),
        ("consent store", lambda: store_answers(portal.people.consents)()),
        ("accounts store", lambda: store_answers(portal.people.accounts)()),
        ("keys", lambda: present(portal.audit_key, portal.mesh.outbound)()),
    ]
    observe(app, "portal", checks)  # after the middleware above: outermost, so it times them too
    return app


def _render(request: Request) -> Render:
    return Render(request, request.app.state.templates, language(request))


async def not_found(request: Request, exc: Exception):
    session = session_of(request, request.app.state.portal)
    log.warning("refused: %s asked for %s (%s)", session.actor_ref if session else "anonymous", request.url.path, exc)
    render = _render(request)
    return render("error.html", session, 404, title=render.t("not_found"), detail="")


async def upstream(request: Request, exc: Exception):
    """A page that could not be made because a part behind the hub refused or was away (the services part
    restarting): the error page with the problem's status and "try again later", not a 500; nothing was changed."""
    status = exc.status if isinstance(exc, Problem) else 502
    log.warning("%s: %s (%s)", request.url.path, exc, status)
    render = _render(request)
    session = session_of(request, request.app.state.portal)
    return render("error.html", session, status, title=render.t("error"), detail=render.t("try_later"))


async def invalid(request: Request, exc: Exception):
    """A form or query that does not validate: an RFC 9457 problem, not FastAPI's bare 422."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return invalid_request(list(errors)).response(request.url.path, language(request))


async def server_timing(request: Request, call_next):
    started = time.perf_counter()
    response = await call_next(request)
    response.headers["server-timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response


async def security_headers(request: Request, call_next):
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def same_origin(request: Request, call_next):
    """A state-changing request that a browser says comes from another site (Origin, else Referer) is refused:
    the form tokens are the first defence, this the second. Requests without either (the hub, scripts) pass."""
    if request.method not in SAFE_METHODS:
        source = request.headers.get("origin") or request.headers.get("referer")
        if source is not None and urlsplit(source).netloc != request.headers.get("host"):
            log.warning("refused a %s %s from %s", request.method, request.url.path, source[:200])
            problem = Problem("cross-origin", f"{request.method} {request.url.path} from another site")
            return problem.response(request.url.path, language(request))
    return await call_next(request)


async def failed(request: Request, exc: Exception):
    log.exception("portal error on %s", request.url.path)
    render = _render(request)
    session = session_of(request, request.app.state.portal)
    return render("error.html", session, 500, title=render.t("error"), detail=render.t("try_later"))
