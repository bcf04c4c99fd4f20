"""The whole portal app (bootstrap.create_app) on fake parts: no input is a server error, the connection is kept
open when one happens, and what does not validate is an RFC 9457 problem (issue 21's fuzzing findings)."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from types import SimpleNamespace

import pytest
import uvicorn
from fastapi import APIRouter
from fastapi.testclient import TestClient

from publicmesh.portal import bootstrap
from publicmesh.portal.deps import current_session
from publicmesh.portal.sessions import Session
from publicmesh.problems import Problem

ME = "P" * 22
SETTINGS_POSTS = [
    "/settings/account",
    "/settings/contact",
    "/settings/contact/confirm",
    "/settings/mandates",
    "/settings/mandates/m1/revoke",
    "/settings/consents/c1/revoke",
    "/settings/prior-intent",
    "/settings/signing-certificate",
    "/settings/wallet",
    "/settings/wallets/d1/revoke",
]
PROBLEM = "application/problem+json"


class FakeSessions:
    def get(self, session_id):
        return None

    def touch(self, session):
        pass


class FakeMesh:
    def __init__(self):
        self.asked: list = []

    async def exchange_records(self, subject, before):
        self.asked.append(before)
        raise AssertionError("a page out of range must not reach the hub")


def portal() -> SimpleNamespace:
    return SimpleNamespace(sessions=FakeSessions(), mesh=FakeMesh(), people=SimpleNamespace())


def app_for(parts, session: Session | None = None):
    app = bootstrap.create_app(parts, bootstrap.templates(), hub_link=SimpleNamespace())
    if session is not None:
        app.dependency_overrides[current_session] = lambda: session
    return app


def own_session() -> Session:
    return Session("s1", ME, "山田 太郎", "012084", None, None, None, None, "token")


@pytest.mark.parametrize("path", SETTINGS_POSTS)
def test_a_settings_form_posted_without_a_session_is_not_found(path):
    client = TestClient(app_for(portal()), follow_redirects=False)
    assert client.post(path, data={"csrf": "token"}).status_code == 404


@pytest.mark.parametrize("path", SETTINGS_POSTS)
def test_a_settings_form_posted_without_its_fields_is_an_invalid_request_problem(path):
    answer = TestClient(app_for(portal()), follow_redirects=False).post(path, data={})
    assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM
    problem = answer.json()
    assert problem["type"] == "urn:publicmesh:problem:invalid-request" and problem["status"] == 422
    assert problem["title"] == problem["title_ja"] == "リクエストの内容が正しくありません"
    assert problem["instance"] == path and "csrf" in {e["loc"].split(".")[-1] for e in problem["errors"]}


def test_an_invalid_request_is_titled_in_the_chosen_language():
    answer = TestClient(app_for(portal())).post("/settings/wallet?lang=en", data={})
    assert answer.status_code == 422 and answer.json()["title"] == answer.json()["title_en"]
    assert answer.json()["title_en"] == "The request's fields are missing or not valid"


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"\xff\xfe", b"[1, 2]", b'"text"', b"[" * 100_000, b'{"challenge": 1}', b'{"signature": "a\\u0000"}'],
    ids=["empty", "truncated", "not-utf8", "array", "string", "nested", "a-number", "a-nul"],
)
def test_a_wallet_login_that_is_not_an_object_of_strings_is_a_malformed_request(body):
    answer = TestClient(app_for(portal())).post(
        "/login/wallet", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400 and answer.headers["content-type"] == PROBLEM
    assert answer.json()["type"] == "urn:publicmesh:problem:malformed-request"


@pytest.mark.parametrize("query", ["before=-1", f"before={2**63}", f"before={10**30}", "before=x"])
def test_a_records_page_out_of_the_logs_range_is_refused_before_the_hub_is_asked(query):
    parts = portal()
    answer = TestClient(app_for(parts, own_session())).get(f"/records?{query}")
    assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM
    assert parts.mesh.asked == []


@pytest.mark.parametrize("position", ["-1", str(2**63 - 1), str(10**30)])
def test_a_record_proof_out_of_the_logs_range_is_refused_before_the_hub_is_asked(position):
    parts = portal()
    answer = TestClient(app_for(parts, own_session())).get(f"/records/{position}.json")
    assert answer.status_code == 422 and parts.mesh.asked == []


def failing_app():
    app = app_for(portal())
    router = APIRouter()

    @router.get("/boom")
    async def boom():
        raise RuntimeError("a bug")

    app.include_router(router)
    return app


def test_an_unhandled_error_is_the_error_page_and_goes_no_further():
    answer = TestClient(failing_app()).get("/boom")  # the test client re-raises what reaches the server
    assert answer.status_code == 500 and "エラー" in answer.text


def test_the_connection_stays_open_after_a_server_error():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(failing_app(), log_level="critical", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", sock.getsockname()[1], timeout=5)
        connection.request("GET", "/boom")
        first = connection.getresponse()
        first.read()
        assert first.status == 500 and first.getheader("connection") != "close"
        connection.request("GET", "/healthz")  # on the same connection: uvicorn closed it before the fix
        second = connection.getresponse()
        assert second.status == 200 and second.read() == b'{"status":"ok","system":"portal"}'
        connection.close()
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_openapi_document_says_a_422_is_a_problem():
    paths = app_for(portal()).openapi()["paths"]
    documented = [op["responses"]["422"] for ops in paths.values() for op in ops.values() if "422" in op["responses"]]
    assert documented and all(list(r["content"]) == [PROBLEM] for r in documented)
    assert set(documented[0]["content"][PROBLEM]["schema"]["required"]) == {"type", "title", "status"}


class AwayMesh(FakeMesh):
    async def benefits(self, subject):
        raise Problem("bad-provider-answer", "GOV/digital/services answered HTTP 503")


def test_a_page_whose_part_is_away_is_the_error_page_with_its_status_not_a_500():
    """The services part restarting while a person applies: 502 and "try again later", nothing changed."""
    parts = SimpleNamespace(sessions=FakeSessions(), mesh=AwayMesh(), people=SimpleNamespace())
    client = TestClient(app_for(parts, own_session()), follow_redirects=False)
    answer = client.post("/applications/offers/o1", data={"csrf": "token", "password": "ABC123"})
    assert answer.status_code == 502 and "エラー" in answer.text
    assert client.get("/applications").status_code == 502
