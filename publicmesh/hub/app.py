"""The hub's HTTP app: its routers, its error answer, and the fast path of the exchange routes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from publicmesh.design.api_docs import mount_api_docs
from publicmesh.design.observability import observe, present, store_answers
from publicmesh.design.openapi import SIGNED, SIGNED_SCHEME
from publicmesh.hub.deps import HubDeps, hub_deps
from publicmesh.hub.routes import audit, catalog, exchange, meta
from publicmesh.problems import AnswerErrors, invalid_request, problem_openapi

log = logging.getLogger(__name__)


def create_app(hub: HubDeps, lifespan: Callable | None = None) -> FastPath:
    """The hub's routes over ``hub``; the exchange's hot routes are served by FastPath."""
    app = FastAPI(
        title="Public Service Mesh hub (公共サービスメッシュ)",
        version="1",
        description="Signed, authorized, audited exchange between agency systems under agency-specific pseudonyms. "
        "Requests are signed with HTTP Message Signatures (RFC 9421, Ed25519); errors are RFC 9457 problems.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load their scripts from a public CDN: a page made here instead
        redoc_url=None,
    )
    mount_api_docs(app)
    app.state.hub = hub  # read by deps.hub_deps and bootstrap.lifespan only
    app.add_middleware(AnswerErrors, handler=internal_error)
    app.add_exception_handler(RequestValidationError, invalid)
    for router in (exchange.router, catalog.router, audit.router, meta.router):
        app.include_router(router)
    app.openapi = problem_openapi(app.openapi, {SIGNED: SIGNED_SCHEME})  # type: ignore[method-assign]
    checks = [
        ("hub store", lambda: store_answers(hub.directory.engine)()),
        ("audit store", lambda: store_answers(hub.audit_log.engine)()),
        ("keys", lambda: present(hub.http.signer)()),
    ]
    observe(app, "hub", checks, hub.metrics)
    if hub.audit_log is not None:
        hub.metrics.gauge("publicmesh_audit_log_size", "Records in the audit log", hub.audit_log.size)
    return FastPath(app, hub, exchange.fast_routes())


async def invalid(_request: Request, exc: Exception) -> Response:
    """A query parameter or body FastAPI refuses (e.g. ``/v1/audit/consistency?from=-1``): a 422 problem."""
    return invalid_request(exc.errors() if isinstance(exc, RequestValidationError) else []).response()


async def internal_error(request: Request, _exc: Exception) -> Response:
    log.exception("unhandled error")
    return hub_deps(request).http.internal_error(request)


class FastPath:
    """Sends the exchange routes straight to their handlers, past the framework's middleware stack.

    The same handlers are FastAPI routes too (so /docs and /openapi.json describe them); on the hot
    path the middleware cost ~25% of the hub's CPU per query.
    """

    def __init__(self, app: FastAPI, hub: HubDeps, routes: dict):
        self.app, self.hub, self.routes = app, hub, routes
        self.state = app.state
        self.metrics = hub.metrics  # timed here: the middleware that times the other routes is skipped

    async def __call__(self, scope, receive, send):
        handler = self.routes.get((scope.get("method"), scope.get("path"))) if scope["type"] == "http" else None
        if handler is None:
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        request = Request(scope, receive)
        try:
            response = await handler(request, self.hub)  # the routes' dependency, given directly
        except Exception:
            log.exception("unhandled error")
            response = self.hub.http.internal_error(request)
        await response(scope, receive, send)
        self.metrics.observe(scope["path"], scope["method"], response.status_code, time.perf_counter() - started)
