"""Each console router alone: its handlers on a console of the test's making and a fake staff member
(``app.dependency_overrides``), with the real templates and the services store's schema on SQLite."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from publicmesh.console import login_pages, pages, publish_pages
from publicmesh.console.deps import (
    Console,
    CsrfRefused,
    Forbidden,
    LoginRequired,
    NotFound,
    current_staff,
    get_console,
    make_templates,
)
from publicmesh.console.sessions import StaffSession, StaffSessions
from publicmesh.services import store

KITAMI = "012084"
RUN_ID = "0123456789abcdef"


@pytest.fixture
def console(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'services.db'}")
    store.metadata.create_all(engine)
    run = SimpleNamespace(progress_json=lambda: {"id": RUN_ID, "status": "running", "progress": {}})
    publisher = SimpleNamespace(get=lambda run_id: run if run_id == RUN_ID else None, folder=tmp_path)
    yield Console(engine, staff=None, sessions=StaffSessions(), templates=make_templates(), publisher=publisher)
    engine.dispose()


def reviewer() -> StaffSession:
    return StaffSession("s1", "rev.kitami", KITAMI, frozenset({"reviewer"}), "token")


def operator() -> StaffSession:
    return StaffSession("s2", "operator.national", "", frozenset({"operator"}), "token")


def client_for(router, console: Console, staff: StaffSession | None) -> TestClient:
    """An app of one router; the console's parts and the staff member are the test's. The errors answer their
    status and name, so that a test sees which one a handler raised."""
    app = FastAPI()
    app.include_router(router)
    for error, status in ((LoginRequired, 303), (NotFound, 404), (Forbidden, 403), (CsrfRefused, 403)):
        app.add_exception_handler(error, lambda _r, exc, status=status: PlainTextResponse(type(exc).__name__, status))

    def no_staff():
        raise LoginRequired()

    app.dependency_overrides[get_console] = lambda: console
    app.dependency_overrides[current_staff] = (lambda: staff) if staff else no_staff
    return TestClient(app, follow_redirects=False)


def test_the_dashboard_shows_the_municipalitys_figures(console):
    answer = client_for(pages.router, console, reviewer()).get("/")
    assert answer.status_code == 200 and "北見市" in answer.text


def test_an_operator_has_no_cases_and_is_sent_to_publishing(console):
    assert client_for(pages.router, console, operator()).get("/").headers["location"] == "/publish"
    answer = client_for(pages.router, console, operator()).get("/queue")
    assert (answer.status_code, answer.text) == (403, "Forbidden")


def test_no_session_goes_to_login(console):
    assert client_for(pages.router, console, None).get("/queue").text == "LoginRequired"


def test_a_decision_needs_the_sessions_form_token_before_anything_else(console):
    browser = client_for(pages.router, console, reviewer())
    refused = browser.post("/cases/a1/approve", data={"csrf": "not-the-token"})
    assert (refused.status_code, refused.text) == (403, "CsrfRefused")
    missing = browser.post("/cases/a1/approve", data={"csrf": "token"})
    assert (missing.status_code, missing.text) == (404, "NotFound")


def test_publishing_needs_the_operator_role(console):
    answer = client_for(publish_pages.router, console, reviewer()).get("/publish")
    assert (answer.status_code, answer.text) == (403, "Forbidden")


def test_a_runs_progress_and_an_unknown_run(console):
    browser = client_for(publish_pages.router, console, operator())
    assert browser.get(f"/publish/runs/{RUN_ID}/progress").json()["status"] == "running"
    assert browser.get("/publish/runs/fedcba9876543210/progress").status_code == 404
    assert browser.get("/publish/runs/not-a-run-id").status_code == 404


def test_the_login_form_sets_its_own_token(console):
    answer = client_for(login_pages.router, console, None).get("/login")
    token = answer.cookies.get(login_pages.LOGIN_CSRF)
    assert answer.status_code == 200 and token and f'value="{token}"' in answer.text


def test_logout_ends_the_session(console):
    session = console.sessions.start(SimpleNamespace(username="rev.kitami", municipality=KITAMI, roles={"reviewer"}))
    answer = client_for(login_pages.router, console, session).post("/logout", data={"csrf": session.csrf})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert console.sessions.get(session.id) is None
