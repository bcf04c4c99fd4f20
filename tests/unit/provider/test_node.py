"""An agency node alone, on a made-up agency of two persons: it answers the hub's signed query, bulk query, outbox
read and event delivery, each signed by the member asked, and refuses a caller that is not the hub."""

from __future__ import annotations

import asyncio

import orjson
import pyarrow as pa
import pytest
from sqlalchemy import MetaData, text
from starlette.testclient import TestClient

from publicmesh.protocol import bulk_wire
from publicmesh.protocol.ca import MeshCA
from publicmesh.protocol.members import HUB, MemberId
from publicmesh.protocol.signatures import Signer, Verifier
from publicmesh.protocol.trust import CERTIFICATE_HEADER, TrustStore, certificate_header
from publicmesh.provider.bootstrap import bootstrap
from publicmesh.provider.datasets import Attribute, Dataset
from publicmesh.provider.definition import AgencyDefinition
from publicmesh.provider.messaging import emit
from publicmesh.runtime.provision import member_key
from publicmesh.settings import Settings
from publicmesh.storage import engine_for

MEMBER = MemberId.parse("MUNI/012084/test-registry")
STRANGER = MemberId.parse("MUNI/012084/child-allowance")
PEOPLE = {
    "alice": {"name": "Alice", "address": "北見市1", "_protected": False},
    "bob": {"name": "Bob", "address": "北見市2", "_protected": True},
}
STRING = {"type": "string"}


ON_LOOP: list[bool] = []  # per lookup: whether it ran on the event loop (a worker thread has no running loop)


def _lookup(conn, tenant, subjects, attributes):
    assert tenant == MEMBER.code
    try:
        asyncio.get_running_loop()
        ON_LOOP.append(True)
    except RuntimeError:
        ON_LOOP.append(False)
    for subject in subjects:  # bound as a store's query binds them (a list or an object cannot be)
        conn.execute(text("SELECT :subject"), {"subject": subject})
    return {s: {a: PEOPLE[s][a] for a in [*attributes, "_protected"]} for s in subjects if s in PEOPLE}


def _write(_conn, _tenant, _subject, payload: dict) -> dict:
    if payload.get("fail"):
        raise RuntimeError("a writer's own fault")
    return {"noted": payload.get("note")}


def _agency(handled: list) -> AgencyDefinition:
    person = Dataset(
        "person",
        "個人",
        "Person",
        (Attribute("name", STRING, "氏名", "Name"), Attribute("address", STRING, "住所", "Address", "address")),
        custom_lookup=_lookup,
    )
    return AgencyDefinition(
        "test-registry",
        "試験台帳",
        "Test registry",
        MetaData(),
        {"person": person},
        seed=lambda *_: None,
        handlers={"moved": lambda _conn, _agency, tenant, event: handled.append((tenant, event["subject"]))},
        writers={"person": _write},
    )


class Caller:
    def __init__(self, member: MemberId, key, pem: str):
        self.member, self.key, self.pem = member, key, pem

    def post(self, client: TestClient, path: str, body: bytes, content_type: str = "application/json"):
        headers = Signer(str(self.member), self.key).sign_request("POST", path, body, "r-1")
        headers |= {CERTIFICATE_HEADER: certificate_header(self.pem), "content-type": content_type}
        return client.post(path, content=body, headers=headers)


@pytest.fixture
def node(tmp_path):
    settings = Settings(data_dir=tmp_path)
    ca = MeshCA.load_or_create(settings.keys_dir)
    callers = {m: Caller(m, *member_key(settings, ca, m)) for m in (HUB, STRANGER)}
    _, member_pem = member_key(settings, ca, MEMBER)
    trust = TrustStore(ca.certificate)
    trust.add_pem(member_pem)
    handled: list = []
    agency = _agency(handled)
    with TestClient(bootstrap(agency, settings, [MEMBER.code])) as client:
        yield client, callers, Verifier(trust.key, 30), agency, settings, handled


def signed_by_member(verifier: Verifier, response) -> bool:
    return verifier.verify_response(response.status_code, response.headers, response.content, "r-1") == str(MEMBER)


def test_a_query_from_the_hub_is_answered_signed_by_the_member(node):
    client, callers, verifier, *_ = node
    doc = {"member": str(MEMBER), "dataset": "person", "subject": "bob", "attributes": ["name", "address"]}
    response = callers[HUB].post(client, "/v1/query", orjson.dumps(doc))
    assert response.status_code == 200 and signed_by_member(verifier, response)
    assert response.json() == {"subject": "bob", "data": {"name": "Bob", "address": "北見市2"}, "protected": True}


@pytest.mark.parametrize(
    ("change", "status", "slug"),
    [
        ({"subject": "carol"}, 404, "unknown-subject"),
        ({"dataset": "income"}, 404, "unknown-dataset"),
        ({"attributes": ["income"]}, 400, "malformed-request"),
        ({"member": "MUNI/131016/test-registry"}, 404, "unknown-member"),
    ],
)
def test_what_the_node_does_not_hold_is_a_signed_problem(node, change, status, slug):
    client, callers, verifier, *_ = node
    doc = {"member": str(MEMBER), "dataset": "person", "subject": "alice", "attributes": ["name"]} | change
    response = callers[HUB].post(client, "/v1/query", orjson.dumps(doc))
    assert response.status_code == status and response.json()["type"].endswith(slug)
    assert signed_by_member(verifier, response)


def test_a_member_other_than_the_hub_must_go_through_the_hub(node):
    client, callers, *_ = node
    doc = {"member": str(MEMBER), "dataset": "person", "subject": "alice", "attributes": ["name"]}
    response = callers[STRANGER].post(client, "/v1/query", orjson.dumps(doc))
    assert response.status_code == 403 and response.json()["type"].endswith("not-a-consumer")


def test_a_bulk_query_answers_the_rows_found_with_their_positions_in_the_request(node):
    client, callers, verifier, *_ = node
    subjects = pa.array(["carol", "bob", "alice"])
    body = bulk_wire.request_body(subjects, {"member": str(MEMBER), "dataset": "person", "attributes": ["name"]})
    response = callers[HUB].post(client, "/v1/bulk", body, bulk_wire.ARROW_STREAM)
    assert response.status_code == 200 and signed_by_member(verifier, response)
    table = pa.ipc.open_stream(response.content).read_all()
    answered = sorted(zip(table.column("i").to_pylist(), table.column("name").to_pylist()))
    assert answered == [(1, "Bob"), (2, "Alice")] and "subject" not in table.column_names


def test_the_outbox_is_read_after_the_hubs_cursor_and_an_event_is_taken_once(node):
    client, callers, _, agency, settings, handled = node
    engine = engine_for(agency.system, settings)  # the node's own store, written as the agency's system would
    with engine.begin() as conn:
        emit(conn, agency.outbox, str(MEMBER), "moved", "alice", {"to": "北見市3"})
        emit(conn, agency.outbox, str(MEMBER), "moved", "bob", {"to": "北見市4"})
    read = callers[HUB].post(client, "/v1/outbox", orjson.dumps({"after": 1}))
    assert [e["subject"] for e in read.json()["events"]] == ["bob"]
    event = {"member": str(MEMBER), "type": "moved", "subject": "alice", "data": {}, "occurred_at": "2026-12-07"}
    delivery = orjson.dumps({"events": [event | {"idempotency_key": "k1", "source": "GOV/x/y"}]})
    first = callers[HUB].post(client, "/v1/events", delivery)
    again = callers[HUB].post(client, "/v1/events", delivery)
    assert first.json() == {"accepted": 1, "duplicates": 0} and again.json() == {"accepted": 0, "duplicates": 1}
    assert handled == [(MEMBER.code, "alice")]
    engine.dispose()


def test_one_subjects_read_is_answered_on_the_event_loop_and_a_bulk_read_beside_it(node):
    client, callers, *_ = node
    ON_LOOP.clear()
    doc = {"member": str(MEMBER), "dataset": "person", "subject": "alice", "attributes": ["name"]}
    assert callers[HUB].post(client, "/v1/query", orjson.dumps(doc)).status_code == 200
    meta = {"member": str(MEMBER), "dataset": "person", "attributes": ["name"]}
    body = bulk_wire.request_body(pa.array(["alice"]), meta)
    assert callers[HUB].post(client, "/v1/bulk", body, bulk_wire.ARROW_STREAM).status_code == 200
    assert ON_LOOP == [True, False]


@pytest.mark.parametrize(
    "delivery",
    [
        {"events": [None]},
        {"events": "k1"},
        {"events": [{"member": str(MEMBER), "type": "moved", "subject": {"a": 1}, "data": {}, "occurred_at": "x"}]},
        {"events": [{"member": str(MEMBER), "type": "moved", "subject": "alice", "data": [], "occurred_at": "x"}]},
    ],
)
def test_a_malformed_delivery_is_a_signed_400_problem(node, delivery):
    """Found by the fuzzer (tests/integration/test_fuzz_parts.py): these were 500s."""
    client, callers, verifier, *_ = node
    for event in delivery["events"] if isinstance(delivery["events"], list) else []:
        if isinstance(event, dict):
            event |= {"idempotency_key": "k9", "source": "GOV/x/y"}
    response = callers[HUB].post(client, "/v1/events", orjson.dumps(delivery))
    assert response.status_code == 400 and response.json()["type"].endswith("malformed-request")
    assert response.headers["content-type"] == "application/problem+json" and signed_by_member(verifier, response)


@pytest.mark.parametrize("cursor", [{"after": 2**63}, {"after": -1}, {"after": "1"}, {"limit": 0}, {"limit": None}])
def test_an_outbox_cursor_out_of_range_is_a_400_problem(node, cursor):
    client, callers, *_ = node
    response = callers[HUB].post(client, "/v1/outbox", orjson.dumps(cursor))
    assert response.status_code == 400 and response.json()["type"].endswith("malformed-request")


def test_the_node_publishes_its_openapi_document_with_its_members_and_datasets(node):
    client, *_ = node
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1") and set(doc["paths"]) == {
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/datasets",
        "/v1/query",
        "/v1/bulk",
        "/v1/outbox",
        "/v1/events",
    }
    query = doc["paths"]["/v1/query"]["post"]
    body = query["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["member"]["enum"] == [str(MEMBER)] and body["properties"]["dataset"]["enum"] == ["person"]
    assert query["security"] == [{"meshSignature": []}] and "RFC 9421" in str(doc["components"]["securitySchemes"])
    assert query["responses"]["401"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    page = client.get("/docs")
    assert page.status_code == 200 and "/v1/events" in page.text and "<script" not in page.text


@pytest.mark.parametrize(
    ("path", "change"),
    [
        ("/v1/query", {"subject": ["alice"]}),
        ("/v1/query", {"subject": {"a": 1}}),
        ("/v1/bulk", {"subjects": [["alice"]]}),
        ("/v1/bulk", {"subjects": ["alice", {"a": 1}]}),
        ("/v1/bulk", {"subjects": "alice"}),
    ],
)
def test_a_subject_that_is_not_a_text_is_a_400_problem(node, path, change):
    """Found by the fuzzer: the store was given a list or an object to bind, a 500."""
    client, callers, verifier, *_ = node
    doc = {"member": str(MEMBER), "dataset": "person", "attributes": ["name"]} | change
    response = callers[HUB].post(client, path, orjson.dumps(doc))
    assert response.status_code == 400 and response.json()["type"].endswith("malformed-request")
    assert signed_by_member(verifier, response)


@pytest.mark.parametrize(
    ("payload", "status"), [({"note": "x"}, 200), (None, 200), (True, 400), ([1], 400), ("x", 400)]
)
def test_a_submission_is_an_object(node, payload, status):
    """Found by the fuzzer: a payload of true reached the services part's writer (payload.get), a 500."""
    client, callers, *_ = node
    doc = {"member": str(MEMBER), "dataset": "person", "subject": "alice", "payload": payload}
    response = callers[HUB].post(client, "/v1/query", orjson.dumps(doc))
    assert response.status_code == status, response.text


def test_an_unexpected_error_is_a_signed_500_problem_on_a_connection_kept_open(node):
    client, callers, verifier, *_ = node
    doc = {"member": str(MEMBER), "dataset": "person", "subject": "alice", "payload": {"fail": True}}
    response = callers[HUB].post(client, "/v1/query", orjson.dumps(doc))
    assert response.status_code == 500 and response.json()["type"].endswith(":internal-error")
    assert response.headers["content-type"] == "application/problem+json" and signed_by_member(verifier, response)
