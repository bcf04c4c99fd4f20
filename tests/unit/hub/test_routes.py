"""The hub's routes alone, on a fake exchange and catalog: they authenticate the signed request, hand it on, and
answer signed (problems too); a router needs nothing but its dependency."""

from __future__ import annotations

import re
from urllib.parse import unquote

import orjson
import pyarrow as pa
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from starlette.requests import Request
from starlette.testclient import TestClient

from publicmesh.hub.app import create_app
from publicmesh.hub.deps import HubDeps, hub_deps
from publicmesh.hub.http import SignedHttp, target_path
from publicmesh.hub.routes import catalog, meta
from publicmesh.hub.rules import RuleBook
from publicmesh.problems import Problem
from publicmesh.protocol import arrow_ipc
from publicmesh.protocol.members import HUB, MemberId
from publicmesh.protocol.schemas import BulkRequest, QueryRequest
from publicmesh.protocol.signatures import Signer, Verifier
from publicmesh.settings import Settings

CONSUMER = MemberId.parse("MUNI/012084/child-allowance")
QUERY = {
    "provider": "MUNI/012084/resident-registry",
    "dataset": "person",
    "subject": "A" * 22,
    "attributes": ["family_name"],
    "purpose": "child-allowance-eligibility",
}
NOTICE = {"subject": "A" * 22, "key": "k", "title_ja": "t", "title_en": "t", "body_ja": "b", "body_en": "b"}
KEYS = {str(m): Ed25519PrivateKey.generate() for m in (HUB, CONSUMER)}


class FakeExchange:
    """Answers ``answer`` (or raises it), keeping what it was asked."""

    def __init__(self, answer=None):
        self.answer, self.asked = answer, []

    async def _give(self, *asked):
        self.asked.append(asked)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    query = bulk = notify = notify_rows = _give


class FakeCatalog:
    def __init__(self):
        self.asked = []

    async def listing(self, caller):
        self.asked.append(caller)
        return [{"member": "MUNI/012084/resident-registry", "datasets": []}]


class FakeDirectory:
    members = {str(HUB): object(), str(CONSUMER): object()}


def deps(tmp_path, exchange=None) -> HubDeps:
    verifier = Verifier(lambda member: KEYS[member].public_key() if member in KEYS else None, 30)
    return HubDeps(
        settings=Settings(data_dir=tmp_path),
        http=SignedHttp(Signer(str(HUB), KEYS[str(HUB)]), verifier),
        directory=FakeDirectory(),
        rules=RuleBook([], []),
        catalog=FakeCatalog(),
        exchange=exchange or FakeExchange(),
        audit_log=None,
        audit=None,
        outbound=None,
        events=None,
    )


def signed_post(client: TestClient, path: str, doc: dict, request_id: str = "r-1", **headers):
    body = orjson.dumps(doc)
    signed = Signer(str(CONSUMER), KEYS[str(CONSUMER)]).sign_request("POST", path, body, request_id)
    return client.post(path, content=body, headers={**signed, "content-type": "application/json", **headers})


def signed_by_hub(response, request_id: str = "r-1") -> bool:
    verifier = Verifier(lambda member: KEYS[member].public_key(), 30)
    return verifier.verify_response(response.status_code, response.headers, response.content, request_id) == str(HUB)


def test_a_signed_query_reaches_the_exchange_and_is_answered_signed(tmp_path):
    exchange = FakeExchange({"request_id": "r-1", "data": {"family_name": "青木"}})
    with TestClient(create_app(deps(tmp_path, exchange))) as client:
        response = signed_post(client, "/v1/query", QUERY)
    assert response.status_code == 200 and response.json()["data"] == {"family_name": "青木"}
    assert signed_by_hub(response)
    ((consumer, req, request_id),) = exchange.asked
    assert consumer == CONSUMER and request_id == "r-1"
    assert isinstance(req, QueryRequest) and req.subject == "A" * 22


def test_an_unsigned_or_malformed_query_is_refused_with_a_signed_problem(tmp_path):
    exchange = FakeExchange({})
    with TestClient(create_app(deps(tmp_path, exchange))) as client:
        unsigned = client.post("/v1/query", content=orjson.dumps(QUERY), headers={"mesh-request-id": "r-1"})
        malformed = signed_post(client, "/v1/query", {**QUERY, "subject": "short"})
    assert unsigned.status_code == 401 and unsigned.json()["type"].endswith("missing-signature")
    assert malformed.status_code == 400 and malformed.json()["errors"][0]["loc"] == "subject"
    assert signed_by_hub(unsigned) and signed_by_hub(malformed)
    assert exchange.asked == []


def test_the_exchanges_problem_is_answered_in_the_callers_language(tmp_path):
    refusing = FakeExchange(Problem("not-allowed", "no rule"))
    with TestClient(create_app(deps(tmp_path, refusing))) as client:
        response = signed_post(client, "/v1/query", QUERY, **{"accept-language": "en"})
    assert response.status_code == 403 and signed_by_hub(response)
    expected = {
        "title": "No access rule allows this exchange",
        "detail": "no rule",
        "instance": "r-1",
    }
    assert expected.items() <= response.json().items()


@pytest.mark.parametrize("path", ["/v1/query", "/v1/notify"])  # on the fast path, and through FastAPI
def test_an_unexpected_error_is_a_signed_internal_error(tmp_path, path):
    failing = FakeExchange(RuntimeError("bug"))
    notify = {"provider": "GOV/digital/portal", "purpose": "p", "service": "s", "notices": [NOTICE]}
    doc = QUERY if path == "/v1/query" else notify
    with TestClient(create_app(deps(tmp_path, failing)), raise_server_exceptions=False) as client:
        response = signed_post(client, path, doc)
    assert response.status_code == 500 and response.json()["type"].endswith("internal-error")
    assert signed_by_hub(response)


def test_a_bulk_answer_is_the_exchanges_table_as_a_signed_arrow_stream(tmp_path):
    table = pa.table({"subject": ["A" * 22], "family_name": ["青木"]})
    exchange = FakeExchange(table)
    bulk = {k: v for k, v in QUERY.items() if k != "subject"} | {"subjects": ["A" * 22]}
    with TestClient(create_app(deps(tmp_path, exchange))) as client:
        response = signed_post(client, "/v1/bulk", bulk)
    assert response.status_code == 200 and response.headers["content-type"] == arrow_ipc.ARROW_STREAM
    assert pa.ipc.open_stream(response.content).read_all().equals(table) and signed_by_hub(response)
    ((_, req, _, subjects),) = exchange.asked
    assert isinstance(req, BulkRequest) and req.subjects == ["A" * 22] and subjects is None


def test_a_router_runs_on_any_app_given_its_dependency(tmp_path):
    hub = deps(tmp_path)
    app = FastAPI()
    app.include_router(catalog.router)
    app.include_router(meta.router)
    app.dependency_overrides[hub_deps] = lambda: hub
    with TestClient(app) as client:
        assert client.get("/problems").status_code == 200
        assert client.get("/v1/catalog", params={"consumer": str(CONSUMER)}).status_code == 200
        assert client.get("/v1/catalog", params={"consumer": "not-a-member"}).status_code == 400
    assert hub.catalog.asked == [CONSUMER]


def test_the_api_docs_are_served_from_the_hub_itself(tmp_path):
    with TestClient(create_app(deps(tmp_path))) as client:
        page = client.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "/v1/query" in page.text and "QueryRequest" in page.text and 'href="/openapi.json"' in page.text
        assert "<script" not in page.text
        assert re.findall(r'(?:src|href)="([^"#/][^"]*|//[^"]*)"', page.text) == []  # nothing from another host
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert client.get("/redoc").status_code == 404  # FastAPI's, which loads from a CDN
        assert client.get("/openapi.json").json()["paths"]["/v1/query"]


def test_the_signed_routes_are_documented_as_such(tmp_path):
    with TestClient(create_app(deps(tmp_path))) as client:
        doc = client.get("/openapi.json").json()
    scheme = doc["components"]["securitySchemes"]["meshSignature"]
    assert "RFC 9421" in scheme["description"]
    for path in ("/v1/query", "/v1/bulk", "/v1/notify", "/v1/audit/records"):
        assert doc["paths"][path]["post"]["security"] == [{"meshSignature": []}], path
    records = doc["paths"]["/v1/audit/records"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "before" in records["properties"] and records["properties"]["subject"]["maxLength"] == 22
    assert "security" not in doc["paths"]["/v1/catalog"]["get"]


@pytest.mark.parametrize("before", [-1, 2**63])
def test_a_records_page_before_a_position_no_store_can_hold_is_a_malformed_request(tmp_path, before):
    exchange = FakeExchange({})
    with TestClient(create_app(deps(tmp_path, exchange))) as client:
        response = signed_post(client, "/v1/audit/records", {"subject": "A" * 22, "before": before})
    assert response.status_code == 400 and response.json()["type"].endswith("malformed-request")
    assert response.json()["errors"][0]["loc"] == "before" and signed_by_hub(response)
    assert exchange.asked == []


def test_a_records_page_below_the_largest_position_is_asked(tmp_path):
    exchange = FakeExchange({"records": []})
    exchange.records = exchange._give
    with TestClient(create_app(deps(tmp_path, exchange))) as client:
        response = signed_post(client, "/v1/audit/records", {"subject": "A" * 22, "before": 2**63 - 1})
    assert response.status_code == 200 and exchange.asked[0][1].before == 2**63 - 1


@pytest.mark.parametrize("path", ["/v1/query", "/v1/a%3Fb", "/v1/a b", "/v1/%E3%81%82"])
def test_the_signed_path_is_the_one_the_request_url_gives(path):
    request = Request({"type": "http", "method": "POST", "path": unquote(path), "headers": [], "query_string": b""})
    assert target_path(request) == request.url.path


@pytest.mark.parametrize("query", ["from=-1", "from=x", "from=1&to=99999999999999999999", ""])
def test_a_query_parameter_the_hub_refuses_is_a_problem(tmp_path, query):
    with TestClient(create_app(deps(tmp_path))) as client:
        answer = client.get(f"/v1/audit/consistency?{query}")
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith(":invalid-request") and answer.json()["errors"]
