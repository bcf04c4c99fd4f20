"""The resident portal: pages scoped to the logged-in person (or their principal within a mandate)."""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from publicmesh import design
from publicmesh.audit import load_audit_public_key
from publicmesh.portal.i18n import translate
from publicmesh.portal.mesh import PortalMesh
from publicmesh.portal.sessions import Session, SessionStore
from publicmesh.settings import Settings, get_settings
from publicmesh.storage import engine_for

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
COOKIE = "portal_session"


class NotFound(Exception):
    """Anything that is not the person's own answers 404 (and the attempt is logged)."""


class Portal:
    def __init__(self, settings: Settings, hub_url: str):
        self.settings = settings
        self.hub_url = hub_url
        self.mesh = PortalMesh(settings, hub_url)
        self.sessions = SessionStore(engine_for("identity", settings))
        self.audit_key = load_audit_public_key(settings.keys_dir)
        self._catalog: dict | None = None
        self._titles: dict[str, tuple[str, str]] = {}
        from publicmesh.portal.people import People

        self.identity = People(settings)
        from publicmesh.portal.status_feed import StatusFeed

        self.status_feed = StatusFeed()

    async def name_kana(self, person_ref: str, municipality: str) -> tuple[str, str]:
        """The person's registered name in kana, asked of the resident registry through the hub."""
        found = await self.mesh.self_information(person_ref, municipality, keys=("person",))
        data = found["person"].get("data", {})
        return data.get("family_name_kana", ""), data.get("given_name_kana", "")

    async def catalog(self) -> dict:
        """Attribute titles (ja/en) and schemas by provider system and dataset, from the hub's catalog."""
        if self._catalog is None:
            async with httpx.AsyncClient(timeout=5) as client:
                listing = (await client.get(self.hub_url + "/v1/catalog")).json()
            self._catalog = {}
            for provider in listing:
                self._titles[provider["member"]] = (provider["title_ja"], provider["title_en"])
                system = provider["member"].split("/")[2]
                for d in provider["datasets"]:
                    self._catalog[(system, d["name"])] = {a["name"]: a for a in d["attributes"]}
            async with httpx.AsyncClient(timeout=5) as client:
                for m in (await client.get(self.hub_url + "/v1/members")).json():
                    self._titles.setdefault(m["member"], (m["title_ja"], m["title_en"]))
        return self._catalog

    def member_title(self, member: str, lang: str) -> str:
        ja, en = self._titles.get(member, (member, member))
        return (en if lang == "en" else ja) or member


def create_app(settings: Settings | None = None, hub_url: str | None = None) -> FastAPI:
    settings = settings or get_settings()
    hub_url = hub_url or f"http://{settings.host}:{settings.base_port + 1}"
    portal = Portal(settings, hub_url)
    templates = Jinja2Templates(directory=str(HERE / "templates"))

    @asynccontextmanager
    async def lifespan(_app):
        await portal.mesh.start()
        yield
        await portal.mesh.close()

    app = FastAPI(title="Resident portal", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.portal = portal
    design.mount(app)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def language(request: Request) -> str:
        chosen = request.query_params.get("lang") or request.cookies.get("lang")
        if chosen in ("ja", "en"):
            return chosen
        return "en" if request.headers.get("accept-language", "").lower().startswith("en") else "ja"

    def render(request: Request, name: str, session: Session | None, status: int = 200, **context) -> HTMLResponse:
        lang = language(request)
        response = templates.TemplateResponse(
            request,
            name,
            {"lang": lang, "t": lambda key, **v: translate(key, lang, **v), "session": session, **context},
            status_code=status,
        )
        if request.query_params.get("lang") in ("ja", "en"):
            response.set_cookie("lang", lang, max_age=365 * 86400, samesite="lax")
        return response

    def current(request: Request) -> Session | None:
        """The logged-in session. A mandate revoked or expired since the proxy chose it puts them back on their
        own account at their next request, instead of leaving them on pages that all answer 404."""
        session = portal.sessions.get(request.cookies.get(COOKIE))
        if session is not None and session.acting_for and not portal.identity.mandate_in_force(session):
            log.info(
                "mandate %s no longer in force: %s is back on their own account", session.mandate_id, session.actor_ref
            )
            portal.sessions.act_for(session, None, None, None, None)
            session = portal.sessions.get(session.id)
        return session

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound):
        session = current(request)
        log.warning(
            "refused: %s asked for %s (%s)", session.actor_ref if session else "anonymous", request.url.path, exc
        )
        lang = language(request)
        return render(request, "error.html", session, 404, title=translate("not_found", lang), detail="")

    @app.middleware("http")
    async def server_timing(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        response.headers["server-timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception):
        log.exception("portal error on %s", request.url.path)
        lang = language(request)
        return render(
            request,
            "error.html",
            current(request),
            500,
            title=translate("error", lang),
            detail=translate("try_later", lang),
        )

    app.state.render = render
    app.state.current = current
    app.state.language = language
    app.state.NotFound = NotFound
    from publicmesh.portal import account_pages, hub_api, pages  # noqa: E402  (routes need the helpers above)

    pages.register(app, portal)
    account_pages.register(app, portal)
    hub_api.register(app, portal)
    return app
