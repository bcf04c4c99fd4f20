"""Health, readiness and Prometheus metrics, the same on every part: GET /healthz, /readyz and /metrics, unsigned.

Metrics are labelled by route template (never the raw path) and status class, so their cardinality is bounded
and no pseudonym or other personal datum reaches a label. Each part (each process) has its own registry.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import Engine, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from publicmesh.problems import PROBLEM_SCHEMA, Problem

log = logging.getLogger(__name__)
READY_TIMEOUT_S = 2.0
# Latency buckets from 1 ms (a cached signed query) to 30 s (a municipality's bulk scan).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "(unmatched)"  # the route label of a request no route took (a 404): one label, whatever the path
# A readiness check: a name, and a function that raises when the part cannot serve (run in a thread).
Check = tuple[str, Callable[[], object]]


class PartMetrics:
    """One part's registry: its requests by route template, method and status class, and their latency."""

    def __init__(self, system: str):
        self.system = system
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "publicmesh_http_requests",
            "HTTP requests answered, by route template, method and status class",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "publicmesh_http_request_duration_seconds",
            "Seconds from a request's arrival to the end of its answer, by route template and method",
            ["route", "method"],
            registry=self.registry,
            buckets=BUCKETS,
        )
        # (route, method, status class) → the label children: resolved once, so a request only increments
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        if method not in METHODS:  # any token is a method: one label for the rest, one key too
            method = "OTHER"
        key = (route, method, status // 100)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(route, method, f"{status // 100}xx"), self.latency.labels(route, method))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def gauge(self, name: str, documentation: str, read: Callable[[], float]) -> Gauge:
        """A gauge read when scraped (``read`` may query a store: a scrape runs in a thread)."""
        gauge = Gauge(name, documentation, registry=self.registry)
        gauge.set_function(read)
        return gauge

    def counter(self, name: str, documentation: str, labels: list[str]) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)


class Observed:
    """ASGI middleware: times every request and counts it by the template of the route that took it."""

    def __init__(self, app: ASGIApp, metrics: PartMetrics, routes: list | None = None):
        self.app, self.metrics, self.routes = app, metrics, routes or []
        self._templates: dict[Any, str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # when the app raises before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # the router put the route it chose in the scope (the same dict through the middleware stack)
            route = getattr(scope.get("route"), "path", None) or self._template_of(scope.get("endpoint"))
            self.metrics.observe(route, scope["method"], status, time.perf_counter() - started)

    def _template_of(self, endpoint: Any) -> str:
        """The path of the app's own route or mount whose endpoint took the request (FastAPI names only its
        APIRoutes in the scope), else UNMATCHED."""
        if self._templates is None:
            self._templates = {}
            for route in self.routes:
                target = getattr(route, "endpoint", None) or getattr(route, "app", None)
                if target is not None and getattr(route, "path", None) is not None:
                    self._templates.setdefault(target, route.path)
        return self._templates.get(endpoint, UNMATCHED) if endpoint is not None else UNMATCHED


def store_answers(engine: Engine) -> Callable[[], object]:
    """A check: the store answers a trivial query (and a SQLite store's file is still there: one removed under
    the process would take writes that are lost when it exits)."""

    def check() -> object:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1")).scalar_one()
            if conn.dialect.name == "sqlite":
                for _seq, name, path in conn.exec_driver_sql("PRAGMA database_list"):
                    if path and not os.path.exists(path):
                        raise FileNotFoundError(f"the {name} database's file was removed")
        return True

    return check


def present(*things: object) -> Callable[[], object]:
    """A check: the keys (or other things loaded at start) are there."""

    def check() -> object:
        if any(thing is None for thing in things):
            raise LookupError("not loaded")
        return True

    return check


def health_routes(metrics: PartMetrics, checks: list[Check]) -> list[Route]:
    """GET /healthz (alive: no I/O), /readyz (every check passes, else a 503 not-ready problem) and /metrics."""
    system = metrics.system

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "system": system})

    async def readyz(request: Request) -> Response:
        try:
            failed = await asyncio.wait_for(asyncio.to_thread(_failing, checks), READY_TIMEOUT_S)
        except TimeoutError:
            failed = f"a check did not answer within {READY_TIMEOUT_S:.0f} s"
        if failed:
            return Problem("not-ready", f"{system}: {failed}").response(request.url.path)
        return JSONResponse({"status": "ready", "system": system, "checks": [name for name, _ in checks]})

    async def metrics_text(_request: Request) -> Response:
        body = await asyncio.to_thread(generate_latest, metrics.registry)  # gauges may read a store
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_text, methods=["GET"]),
    ]


def _failing(checks: list[Check]) -> str:
    """The first failing check, named with its error's type only (a message could name a store's address)."""
    for name, check in checks:
        try:
            check()
        except Exception as exc:
            log.warning("not ready: %s: %s", name, exc)
            return f"{name} failed ({type(exc).__name__})"
    return ""


HEALTH_PATHS: dict[str, Any] = {
    "/healthz": {
        "get": {
            "summary": "Whether the part is alive (no I/O)",
            "responses": {
                "200": {
                    "description": "Alive",
                    "content": {"application/json": {"schema": {"type": "object", "required": ["status", "system"]}}},
                }
            },
        }
    },
    "/readyz": {
        "get": {
            "summary": "Whether the part can serve: its store answers and its keys are loaded",
            "responses": {
                "200": {
                    "description": "Ready",
                    "content": {"application/json": {"schema": {"type": "object", "required": ["status", "system"]}}},
                },
                "503": {
                    "description": "Problem: not-ready",
                    "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}},
                },
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics (text format): requests and latency by route template, and the part's own",
            "responses": {
                "200": {"description": "Metrics", "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}
            },
        }
    },
}


def health_paths() -> dict[str, Any]:
    """The three routes' OpenAPI paths, a copy each time: a document's user may change what it is given."""
    return copy.deepcopy(HEALTH_PATHS)


def observe(app: Starlette, system: str, checks: list[Check], metrics: PartMetrics | None = None) -> PartMetrics:
    """Gives ``app`` /healthz, /readyz and /metrics (in its OpenAPI document too) and times its requests, in
    ``metrics`` (a new registry if not given)."""
    metrics = metrics or PartMetrics(system)
    app.router.routes[0:0] = health_routes(metrics, checks)
    app.add_middleware(
        Observed, metrics=metrics, routes=app.router.routes
    )  # added last: outermost of the app's own middleware
    openapi = getattr(app, "openapi", None)
    if openapi is not None:  # a FastAPI app: its generated document gets the three paths

        def document() -> dict:
            # a copy: FastAPI keeps the document it made, and the app's own wrappers change it on each call
            schema = dict(openapi())
            schema["paths"] = {**schema.get("paths", {}), **health_paths()}
            return schema

        app.openapi = document  # type: ignore[attr-defined]
    app.state.metrics = metrics
    return metrics
