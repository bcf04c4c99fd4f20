"""The whole console app (bootstrap.create_app): an unhandled error is its error page and goes no further (the
connection stays open), and what does not validate is an RFC 9457 problem, not FastAPI's bare 422."""

from __future__ import annotations

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from publicmesh.console import bootstrap
from publicmesh.services import store


@pytest.fixture
def client(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'services.db'}")
    store.metadata.create_all(engine)
    app = bootstrap.create_app(engine, staff=None)
    router = APIRouter()

    @router.get("/boom")
    async def boom():
        raise RuntimeError("a bug")

    @router.get("/count")
    async def count(n: int):
        return {"n": n}

    app.include_router(router)
    yield TestClient(app, follow_redirects=False)  # the test client re-raises what reaches the server
    engine.dispose()


def test_an_unhandled_error_is_the_error_page(client):
    answer = client.get("/boom")
    assert answer.status_code == 500 and "エラー" in answer.text


def test_a_query_that_does_not_validate_is_an_invalid_request_problem(client):
    answer = client.get("/count?n=x&lang=en")
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == "urn:publicmesh:problem:invalid-request" and problem["instance"] == "/count"
    assert problem["title"] == problem["title_en"] and problem["errors"][0]["loc"] == "query.n"
