"""The staff console app: login with password and TOTP, then pages scoped to the staff member's municipality,
and the operator's pages for publishing a service."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from publicmesh import design
from publicmesh.console import pages, texts
from publicmesh.console.cases import REVIEWED_NOTE
from publicmesh.console.sessions import ABSOLUTE_S, StaffSession, StaffSessions
from publicmesh.console.staff import StaffLoginError

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
LOGIN_CSRF = "console_login"
RESEND_S = 10  # how often decision notices the hub did not take are tried again


class LoginRequired(Exception):
    """No live session: pages send the browser to /login."""


class NotFound(Exception):
    """Not there, or another municipality's: both answer the same 404."""


class Forbidden(Exception):
    """Logged in, but without the role the page needs: 403, with why (a texts key)."""

    def __init__(self, why: str = "err_operator"):
        super().__init__(why)
        self.why = why


class CsrfRefused(Exception):
    """A POST whose form token does not match the session's (or the login cookie's)."""


@lru_cache(maxsize=256)
def municipality_name(code: str) -> str:
    try:
        from publicmesh.population.places import municipality

        return municipality(code).name
    except (KeyError, ImportError, OSError):
        return code


def for_settings(settings, hub_url: str) -> FastAPI:
    """The console of this machine's mesh: the services store, its staff accounts, and decision notices sent
    through the hub as the services member (GOV/digital/services), whose staff face the console is."""
    from publicmesh.console.publishing import Publisher
    from publicmesh.console.staff import StaffDirectory
    from publicmesh.protocol.client import MeshClient
    from publicmesh.services.applications import SERVICES_MEMBER
    from publicmesh.services.decisions import NoticeSender
    from publicmesh.services.operator import publish_file
    from publicmesh.services.store import metadata
    from publicmesh.storage import engine_for, schema_once

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
    engine_services: Engine, staff, *, secure_cookies: bool = False, notices=None, publisher=None
) -> FastAPI:
    """The console on the services store (``engine_services``) and a staff directory (``staff.staff_login``);
    ``notices.send_pending()``, if given, sends the decision notices after each decision and periodically;
    ``publisher`` (a publishing.Publisher), if given, serves the operator's publish pages."""
    sessions = StaffSessions()
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(
        yen=texts.yen, when=texts.when, duration=texts.duration, reviewed_note=REVIEWED_NOTE, place=municipality_name
    )
    # __Host- binds the cookie to this exact origin, but browsers only accept it over HTTPS.
    cookie = "__Host-console_session" if secure_cookies else "console_session"

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        resend = asyncio.create_task(_resend_forever(notices)) if notices is not None else None
        yield
        if resend is not None:
            resend.cancel()

    app = FastAPI(title="Staff console", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    design.mount(app)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def language(request: Request) -> str:
        chosen = request.query_params.get("lang") or request.cookies.get("lang")
        return "en" if chosen == "en" else "ja"

    def render(request: Request, name: str, session: StaffSession | None, status: int = 200, **context) -> HTMLResponse:
        lang = language(request)
        response = templates.TemplateResponse(
            request,
            name,
            {
                "lang": lang,
                "t": lambda key, **v: texts.translate(key, lang, **v),
                "session": session,
                "municipality": _where(session, lang),
                **context,
            },
            status_code=status,
        )
        if request.query_params.get("lang") in ("ja", "en"):
            response.set_cookie("lang", lang, max_age=365 * 86400, samesite="lax", secure=secure_cookies)
        return response

    def current(request: Request) -> StaffSession:
        session = sessions.get(request.cookies.get(cookie))
        if session is None:
            raise LoginRequired()
        return session

    async def posted(request: Request, session: StaffSession) -> dict[str, str]:
        """The form of a POST, after its CSRF token matched the session's."""
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        if not hmac.compare_digest(form.get("csrf", "").encode(), session.csrf.encode()):
            raise CsrfRefused()
        return form

    @app.middleware("http")
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

    @app.exception_handler(LoginRequired)
    async def to_login(_request: Request, _exc: LoginRequired):
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, _exc: NotFound):
        session = sessions.get(request.cookies.get(cookie))
        log.warning(
            "console: %s asked for %s (not theirs or not there)",
            session.username if session else "anonymous",
            request.url.path,
        )
        lang = language(request)
        return render(request, "error.html", session, 404, title=texts.translate("not_found", lang), detail="")

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden):
        lang = language(request)
        return render(
            request,
            "error.html",
            sessions.get(request.cookies.get(cookie)),
            403,
            title=texts.translate("forbidden", lang),
            detail=texts.translate(exc.why, lang),
        )

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, _exc: CsrfRefused):
        lang = language(request)
        log.warning("console: POST %s without a matching CSRF token", request.url.path)
        return render(
            request,
            "error.html",
            sessions.get(request.cookies.get(cookie)),
            403,
            title=texts.translate("error", lang),
            detail=texts.translate("err_csrf", lang),
        )

    def login_page(request: Request, error: str | None = None, status: int = 200, username: str = "") -> HTMLResponse:
        token = secrets.token_urlsafe(24)
        response = render(request, "login.html", None, status, csrf=token, error=error, username=username)
        response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", secure=secure_cookies, max_age=3600)
        return response

    @app.get("/healthz", include_in_schema=False)
    async def health():
        return PlainTextResponse("ok")

    @app.get("/login")
    async def login_form(request: Request):
        return login_page(request)

    @app.post("/login")
    async def login(request: Request):
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        expected = request.cookies.get(LOGIN_CSRF, "")
        if not expected or not hmac.compare_digest(form.get("csrf", "").encode(), expected.encode()):
            raise CsrfRefused()
        lang, username = language(request), form.get("username", "").strip()
        try:
            # scrypt is slow on purpose; keep it off the event loop.
            principal = await run_in_threadpool(
                staff.staff_login, username, form.get("password", ""), form.get("totp", "").strip()
            )
        except StaffLoginError as exc:
            log.info("console: staff login refused for %r (%s)", username, exc.reason)
            key = "login_locked" if exc.reason == "locked" else "login_failed"
            return login_page(request, texts.translate(key, lang), 401, username)
        session = sessions.start(principal)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            cookie, session.id, httponly=True, samesite="lax", secure=secure_cookies, path="/", max_age=ABSOLUTE_S
        )
        response.delete_cookie(LOGIN_CSRF)
        return response

    @app.post("/logout")
    async def logout(request: Request):
        session = current(request)
        await posted(request, session)
        sessions.end(session.id)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(cookie, path="/")
        return response

    app.state.sessions = sessions
    pages.register(
        app,
        engine_services,
        render=render,
        current=current,
        posted=posted,
        not_found=NotFound,
        forbidden=Forbidden,
        notices=notices,
    )
    if publisher is not None:
        from publicmesh.console import publish_pages

        publish_pages.register(
            app,
            engine_services,
            publisher,
            render=render,
            current=current,
            posted=posted,
            forbidden=Forbidden,
            not_found=NotFound,
        )
    return app


def _where(session: StaffSession | None, lang: str) -> str:
    """The staff member's municipality by name, or 'national' for an operator."""
    if session is None:
        return ""
    return municipality_name(session.municipality) if session.municipality else texts.translate("national", lang)


async def _resend_forever(notices) -> None:
    """Notices left pending (the hub was down, or the console died after a decision) go out on a later run."""
    while True:
        try:
            await run_in_threadpool(notices.send_pending)
        except Exception:  # keep retrying whatever went wrong; the next run may succeed
            log.exception("console: sending decision notices failed")
        await asyncio.sleep(RESEND_S)
