"""The console's routes: every (method, path) it served before its routers became APIRouter modules, in the same
order; the publish pages only where the console publishes."""

from __future__ import annotations

from types import SimpleNamespace

from app_routes import app_routes
from sqlalchemy import create_engine
from starlette.testclient import TestClient

from publicmesh.console.bootstrap import create_app

BEFORE = [
    ("MOUNT", "/static/design"),
    ("MOUNT", "/static"),
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


# Since issue 21 the console publishes its OpenAPI document and its local page.
DOCUMENT = [("GET", "/openapi.json"), ("HEAD", "/openapi.json")]
DOCS = [("GET", "/docs")]
# Since issue 22 every part answers these first (publicmesh/design/observability.py).
HEALTH = [(m, p) for p in ("/healthz", "/readyz", "/metrics") for m in ("GET", "HEAD")]


def test_the_console_serves_the_routes_it_served_before():
    engine = create_engine("sqlite://")
    assert app_routes(create_app(engine, staff=None, publisher=SimpleNamespace())) == HEALTH + DOCUMENT + BEFORE + DOCS
    pages = [r for r in BEFORE if not r[1].startswith("/publish")]
    assert app_routes(create_app(engine, staff=None)) == HEALTH + DOCUMENT + pages + DOCS


def test_the_console_documents_its_forms_answers_and_session():
    client = TestClient(create_app(create_engine("sqlite://"), staff=None, publisher=SimpleNamespace()))
    doc = client.get("/openapi.json").json()
    login = doc["paths"]["/login"]["post"]
    form = login["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert set(form["required"]) == {"username", "password", "totp", "csrf"} and "security" not in login
    publish = doc["paths"]["/publish"]["post"]
    assert "multipart/form-data" in publish["requestBody"]["content"] and publish["security"] == [{"staffSession": []}]
    assert set(publish["responses"]["422"]["content"]) == {"text/html", "application/problem+json"}
    approve = doc["paths"]["/cases/{application_id}/approve"]["post"]
    assert {"303", "403", "404", "409"} <= set(approve["responses"])
    assert doc["components"]["securitySchemes"]["staffSession"]["in"] == "cookie"
    page = client.get("/docs")
    assert page.status_code == 200 and "<script" not in page.text and "/cases/{application_id}/approve" in page.text
