"""What the portal's route handlers depend on: the portal's parts, the page renderer and the logged-in session.

``portal.bootstrap`` puts the parts on the app; only these functions read them, and tests override them
(``app.dependency_overrides``) to run a handler alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from publicmesh.portal.core import Portal
from publicmesh.portal.i18n import translate
from publicmesh.portal.sessions import Session

log = logging.getLogger(__name__)
COOKIE = "portal_session"


class NotFound(Exception):
    """Anything that is not the person's own answers 404 (and the attempt is logged)."""


# The dependencies are async on purpose: FastAPI runs a plain function in its thread pool, and what they do is
# quick (the handlers called them on the event loop before they became dependencies).


async def get_portal(request: Request) -> Portal:
    return request.app.state.portal


async def get_templates(request: Request) -> Jinja2Templates:
    return request.app.state.templates


def language(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get("lang")
    if chosen in ("ja", "en"):
        return chosen
    return "en" if request.headers.get("accept-language", "").lower().startswith("en") else "ja"


@dataclass(frozen=True)
class Render:
    """Renders a template for this request, in its language; a ``?lang=`` choice is kept in a cookie."""

    request: Request
    templates: Jinja2Templates
    lang: str

    def __call__(self, name: str, session: Session | None, status: int = 200, **context) -> HTMLResponse:
        response = self.templates.TemplateResponse(
            self.request,
            name,
            {"lang": self.lang, "t": self.t, "session": session, **context},
            status_code=status,
        )
        if self.request.query_params.get("lang") in ("ja", "en"):
            response.set_cookie("lang", self.lang, max_age=365 * 86400, samesite="lax")
        return response

    def t(self, key: str, **values) -> str:
        return translate(key, self.lang, **values)


async def get_render(request: Request, templates: Jinja2Templates = Depends(get_templates)) -> Render:
    return Render(request, templates, language(request))


def session_of(request: Request, portal: Portal) -> Session | None:
    """The logged-in session. A mandate revoked or expired since the proxy chose it puts them back on their
    own account at their next request, instead of leaving them on pages that all answer 404."""
    session = portal.sessions.get(request.cookies.get(COOKIE))
    if session is not None and session.acting_for and not portal.people.mandate_in_force(session):
        log.info(
            "mandate %s no longer in force: %s is back on their own account", session.mandate_id, session.actor_ref
        )
        portal.sessions.act_for(session, None, None, None, None)
        session = portal.sessions.get(session.id)
    return session


async def current_session(request: Request, portal: Portal = Depends(get_portal)) -> Session | None:
    """The logged-in session, or None; neither kept alive nor logged as a proxy's action (see Require)."""
    return session_of(request, portal)


class Require:
    """Dependency: the logged-in session, or None. Acting for someone needs the mandate to cover ``scope`` (None:
    any), and the action is logged for the principal; the session is kept alive."""

    def __init__(self, scope: str | None):
        self.scope = scope

    async def __call__(
        self,
        request: Request,
        session: Session | None = Depends(current_session),
        portal: Portal = Depends(get_portal),
    ) -> Session | None:
        if session is None:
            return None
        if session.acting_for:
            if self.scope is not None and not portal.people.mandate_allows(session, self.scope):
                raise NotFound(f"mandate does not cover {self.scope}")
            portal.people.proxy_log.record(
                session.acting_for, session.actor_ref, session.mandate_id or "", f"{request.method} {request.url.path}"
            )
        portal.sessions.touch(session)
        return session


require_any = Require(None)
require_self_information = Require("self-information")
require_notices = Require("notices")
require_applications = Require("applications")


def check_form(session: Session | None, csrf: str) -> Session:
    """The session a form was posted in, if its token is the session's; else 404, as for anything not theirs."""
    if session is None or csrf != session.csrf:
        raise NotFound("no session or bad form token")
    return session


def to_login(request: Request) -> RedirectResponse:
    chosen = request.query_params.get("lang")
    return RedirectResponse(f"/login?lang={chosen}" if chosen in ("ja", "en") else "/login", status_code=303)


PortalDep = Annotated[Portal, Depends(get_portal)]
RenderDep = Annotated[Render, Depends(get_render)]
CurrentSession = Annotated[Session | None, Depends(current_session)]
