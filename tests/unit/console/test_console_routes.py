"""The console's routes: every (method, path) it served before its routers became APIRouter modules, in the same
order; the publish pages only where the console publishes."""

from __future__ import annotations

from types import SimpleNamespace

from app_routes import app_routes
from sqlalchemy import create_engine

from publicmesh.console.bootstrap import create_app

BEFORE = [
    ("MOUNT", "/static/design"),
    ("MOUNT", "/static"),
    ("GET", "/healthz"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/"),
    ("GET", "/queue"),
    ("GET", "/cases/{application_id}"),
    ("POST", "/cases/{application_id}/approve"),
    ("POST", "/cases/{application_id}/reject"),
    ("POST", "/cases/{application_id}/return"),
    ("GET", "/publish"),
    ("POST", "/publish"),
    ("GET", "/publish/runs/{run_id}"),
    ("GET", "/publish/runs/{run_id}/progress"),
]


def test_the_console_serves_the_routes_it_served_before():
    engine = create_engine("sqlite://")
    assert app_routes(create_app(engine, staff=None, publisher=SimpleNamespace())) == BEFORE
    assert app_routes(create_app(engine, staff=None)) == [r for r in BEFORE if not r[1].startswith("/publish")]
