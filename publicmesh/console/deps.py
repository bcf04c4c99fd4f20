"""What the console's route handlers depend on: the console's parts, the page renderer, the staff member logged in
(and their role), the posted form; and the errors they raise, which ``console.bootstrap`` answers.

``console.bootstrap`` puts the parts on the app; only these functions read them, and tests override them
(``app.dependency_overrides``) to run a handler alone.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

from publicmesh.console import texts
from publicmesh.console.cases import REVIEWED_NOTE
from publicmesh.console.publishing import Publisher
from publicmesh.console.sessions import StaffSession, StaffSessions
from publicmesh.population.places import municipality

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
OPERATOR = "operator"


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


@dataclass
class Console:
    """The console's parts: the services store, the staff directory (``staff_login``) and sessions, the templates;
    ``notices`` (``send_pending()``) and ``publisher`` when this console sends decision notices and publishes."""

    engine: Engine
    staff: Any
    sessions: StaffSessions
    templates: Jinja2Templates
    secure_cookies: bool = False
    notices: Any = None
    publisher: Publisher | None = None

    @property
    def cookie(self) -> str:
        # __Host- binds the cookie to this exact origin, but browsers only accept it over HTTPS.
        return "__Host-console_session" if self.secure_cookies else "console_session"

    def session_of(self, request: Request) -> StaffSession | None:
        return self.sessions.get(request.cookies.get(self.cookie))


@lru_cache(maxsize=256)
def municipality_name(code: str) -> str:
    try:
        return municipality(code).name
    except (KeyError, OSError):
        return code


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(
        yen=texts.yen, when=texts.when, duration=texts.duration, reviewed_note=REVIEWED_NOTE, place=municipality_name
    )
    return templates


def language(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get("lang")
    return "en" if chosen == "en" else "ja"


@dataclass(frozen=True)
class Render:
    """Renders a template for this request, in its language; a ``?lang=`` choice is kept in a cookie."""

    request: Request
    console: Console
    lang: str

    def __call__(self, name: str, session: StaffSession | None, status: int = 200, **context) -> HTMLResponse:
        response = self.console.templates.TemplateResponse(
            self.request,
            name,
            {"lang": self.lang, "t": self.t, "session": session, "municipality": _where(session, self.lang), **context},
            status_code=status,
        )
        if self.request.query_params.get("lang") in ("ja", "en"):
            response.set_cookie(
                "lang", self.lang, max_age=365 * 86400, samesite="lax", secure=self.console.secure_cookies
            )
        return response

    def t(self, key: str, **values) -> str:
        return texts.translate(key, self.lang, **values)


def _where(session: StaffSession | None, lang: str) -> str:
    """The staff member's municipality by name, or 'national' for an operator."""
    if session is None:
        return ""
    return municipality_name(session.municipality) if session.municipality else texts.translate("national", lang)


# The dependencies are async on purpose: FastAPI runs a plain function in its thread pool, and these are quick
# (sessions live in memory).
async def get_console(request: Request) -> Console:
    return request.app.state.console


ConsoleDep = Annotated[Console, Depends(get_console)]


async def get_render(request: Request, console: ConsoleDep) -> Render:
    return Render(request, console, language(request))


async def current_staff(request: Request, console: ConsoleDep) -> StaffSession:
    """The staff member's live session; none sends the browser to /login."""
    session = console.session_of(request)
    if session is None:
        raise LoginRequired()
    return session


async def reviewer(session: Annotated[StaffSession, Depends(current_staff)]) -> StaffSession:
    """The session of municipal staff: an operator (national, no municipality) reviews no cases (403)."""
    if not session.municipality:
        raise Forbidden("err_municipal")
    return session


async def operator(request: Request, session: Annotated[StaffSession, Depends(current_staff)]) -> StaffSession:
    """The session of staff with the operator role, who publish services; others get 403."""
    if OPERATOR not in session.roles:
        log.warning("console: %s (no operator role) asked for %s", session.username, request.url.path)
        raise Forbidden()
    return session


async def posted(request: Request, session: Annotated[StaffSession, Depends(current_staff)]) -> dict[str, str]:
    """The form of a POST, after its CSRF token matched the session's."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if not hmac.compare_digest(form.get("csrf", "").encode(), session.csrf.encode()):
        raise CsrfRefused()
    return form


RenderDep = Annotated[Render, Depends(get_render)]
Staff = Annotated[StaffSession, Depends(current_staff)]
Reviewer = Annotated[StaffSession, Depends(reviewer)]
Operator = Annotated[StaffSession, Depends(operator)]
Posted = Annotated[dict[str, str], Depends(posted)]
