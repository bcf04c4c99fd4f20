"""The query path over real HTTP between real processes: signatures, rules, conversion, audit, problems."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid

import httpx
import orjson
import pyarrow as pa
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from publicmesh.agencies.resident_registry import residents
from publicmesh.audit.schema import batches, subject_pages
from publicmesh.protocol import signatures
from publicmesh.protocol.client import HubError
from publicmesh.protocol.signatures import Signer

CHILD = "MUNI/012084/child-allowance"
REGISTRY = "MUNI/012084/resident-registry"
PERSON = ["family_name", "given_name", "birth_date", "status"]


def _body(subject: str, **overrides) -> dict:
    return {
        "provider": REGISTRY,
        "dataset": "person",
        "subject": subject,
        "attributes": PERSON,
        "purpose": "child-allowance-eligibility",
        **overrides,
    }


def _post(mesh, doc: dict, signer: Signer | None = None, headers: dict | None = None, raw: bytes | None = None):
    body = raw if raw is not None else orjson.dumps(doc)
    sent = dict(headers or {})
    if signer is not None and headers is None:
        sent = signer.sign_request("POST", "/v1/query", body, uuid.uuid4().hex)
    sent["content-type"] = "application/json"
    return httpx.post(mesh.url("hub") + "/v1/query", content=body, headers=sent, timeout=10), sent


def _assert_problem(response: httpx.Response, status: int, slug: str):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == f"urn:publicmesh:problem:{slug}"
    assert problem["status"] == status and problem["title_ja"] and problem["title_en"] and problem["detail"]
    assert "Traceback" not in response.text


@pytest.fixture
def child_subjects(people):
    return people.convert(people.registry(limit=20), "resident-registry", "child-allowance")


@pytest.fixture
def child_signer(mesh):
    return mesh.client(CHILD).signer


def test_a_query_answers_with_data_and_an_audit_record(mesh, child_subjects):
    before = mesh.audit_size()
    answer = mesh.client(CHILD).query(REGISTRY, "person", child_subjects[0], PERSON, "child-allowance-eligibility")
    assert answer["subject"] == child_subjects[0]  # the consumer sees only its own pseudonym
    assert set(answer["data"]) == set(PERSON) and answer["data"]["family_name"]
    assert answer["rule"] == "child-allowance-person" and "番号法" in answer["legal_basis"]
    # Other parts' exchanges (events, notices of earlier tests) may be recorded meanwhile: this query's record is
    # the one at the position answered, and it is the only record of its request.
    from sqlalchemy import select

    from publicmesh.audit.schema import records

    assert answer["audit_record"] >= before
    found = mesh.rows(
        "audit",
        select(records.c.position, records.c.consumer, records.c.provider, records.c.dataset).where(
            records.c.request_id == answer["request_id"]
        ),
    )
    assert [tuple(r) for r in found] == [(answer["audit_record"], CHILD, REGISTRY, "person")]


def test_an_unsigned_request_is_refused(mesh, child_subjects):
    response, _ = _post(mesh, _body(child_subjects[0]))
    _assert_problem(response, 401, "missing-signature")


def test_a_request_signed_with_the_wrong_key_is_refused(mesh, child_subjects):
    response, _ = _post(mesh, _body(child_subjects[0]), Signer(CHILD, Ed25519PrivateKey.generate()))
    _assert_problem(response, 401, "bad-signature")


def test_a_key_that_is_not_a_member_is_refused(mesh, child_subjects):
    response, _ = _post(mesh, _body(child_subjects[0]), Signer("COM/9999999/stranger", Ed25519PrivateKey.generate()))
    _assert_problem(response, 401, "unknown-key")


def test_a_replayed_request_is_refused(mesh, child_subjects, child_signer):
    first, headers = _post(mesh, _body(child_subjects[1]), child_signer)
    assert first.status_code == 200
    again, _ = _post(mesh, _body(child_subjects[1]), headers=headers)
    _assert_problem(again, 401, "replayed")


def test_a_stale_request_is_refused(mesh, child_subjects, child_signer, monkeypatch):
    real = time.time
    monkeypatch.setattr(signatures.time, "time", lambda: real() - 600)
    body = orjson.dumps(_body(child_subjects[2]))
    headers = child_signer.sign_request("POST", "/v1/query", body, "stale")
    monkeypatch.setattr(signatures.time, "time", real)
    response, _ = _post(mesh, {}, headers=headers, raw=body)
    _assert_problem(response, 401, "stale-signature")


def test_a_query_no_rule_allows_is_refused_with_403(mesh, people):
    nta_subject = people.convert(people.registry(limit=1), "resident-registry", "national-tax")[0]
    with pytest.raises(HubError) as refused:
        mesh.client("GOV/nta/national-tax").query(REGISTRY, "household", nta_subject, ["members"], "taxpayer-address")
    assert refused.value.status == 403
    assert refused.value.problem["type"] == "urn:publicmesh:problem:not-allowed"


def test_a_city_cannot_read_another_city(mesh, people):
    chiyoda = people.convert(people.registry(tenant="131016", limit=1), "resident-registry", "child-allowance")[0]
    with pytest.raises(HubError) as refused:
        mesh.client(CHILD).query(
            "MUNI/131016/resident-registry", "person", chiyoda, PERSON, "child-allowance-eligibility"
        )
    assert refused.value.status == 403


def test_a_protected_address_is_withheld_unless_a_rule_allows_it(mesh, people):
    protected = people.registry(where=residents.c.address_protected.is_(True), limit=1)
    assert protected, "the demo population has address-protected residents"
    nta = people.convert(protected, "resident-registry", "national-tax")[0]
    answer = mesh.client("GOV/nta/national-tax").query(
        REGISTRY, "address", nta, ["postal_code", "address"], "taxpayer-address"
    )
    assert answer["withheld"] == ["address", "postal_code"]
    assert "address" not in answer["data"] and "postal_code" not in answer["data"]
    # the city's own support affair is explicitly allowed to see it
    child = people.convert(protected, "resident-registry", "child-allowance")[0]
    allowed = mesh.client(CHILD).query(
        REGISTRY, "address", child, ["postal_code", "address"], "protected-person-support"
    )
    assert allowed["withheld"] == [] and allowed["data"]["address"]


def test_unknown_subject_malformed_and_oversized_requests_get_4xx(mesh, child_signer):
    forged = "A" * 22
    response, _ = _post(mesh, _body(forged), child_signer)
    _assert_problem(response, 404, "unknown-subject")
    response, _ = _post(mesh, {"provider": REGISTRY}, child_signer)
    _assert_problem(response, 400, "malformed-request")
    response, _ = _post(mesh, {}, child_signer, raw=b"{not json")
    _assert_problem(response, 400, "malformed-request")
    response, _ = _post(mesh, {}, child_signer, raw=b"{" + b" " * (2 << 20) + b"}")
    _assert_problem(response, 413, "payload-too-large")


def test_english_titles_on_request(mesh, child_subjects):
    response = httpx.post(
        mesh.url("hub") + "/v1/query", content=orjson.dumps(_body(child_subjects[0])), headers={"accept-language": "en"}
    )
    assert response.json()["title"] == "The request is not signed"


def test_a_slow_provider_gets_504_and_a_dead_one_503_within_the_timeout(mesh, people):
    local_tax = people.convert(people.registry(limit=1), "resident-registry", "local-tax")[0]
    client = mesh.client("MUNI/012084/local-tax")
    pension = mesh.supervisor.processes["pension"]
    os.kill(pension.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(HubError) as slow:
            client.query("GOV/jps/pension", "pension", local_tax, ["kind"], "resident-tax-assessment")
        assert slow.value.status == 504 and time.monotonic() - started < 4
    finally:
        os.kill(pension.pid, signal.SIGCONT)
    from publicmesh.runtime.topology import part

    mesh.supervisor.kill("pension")
    try:
        with pytest.raises(HubError) as down:
            client.query("GOV/jps/pension", "pension", local_tax, ["kind"], "resident-tax-assessment")
        assert down.value.status == 503
    finally:
        mesh.supervisor.start_part(part(mesh.settings, "pension"))


def test_household_members_arrive_under_the_consumers_pseudonyms(mesh, people):
    heads = people.registry(where=residents.c.relation == "head", limit=30)
    child = people.convert(heads, "resident-registry", "child-allowance")
    before = mesh.audit_size()
    answer = next(
        a
        for a in (
            mesh.client(CHILD).query(
                REGISTRY, "household", s, ["relation", "household_size", "members"], "child-allowance-eligibility"
            )
            for s in child
        )
        if a["data"]["household_size"] >= 2
    )
    members = [m["subject"] for m in answer["data"]["members"]]
    assert answer["subject"] in members
    registry_view = people.convert(members, "child-allowance", "resident-registry")
    assert None not in registry_view  # each is a valid child-allowance pseudonym of a real resident
    assert mesh.audit_size() > before + len(members)  # the subject and each member disclosed are recorded


def test_bulk_answers_in_arrow_with_one_exchange_record_naming_every_subject(mesh, people):
    subjects = people.convert(people.registry(limit=200), "resident-registry", "child-allowance")
    before = mesh.audit_size()
    table = mesh.client(CHILD).bulk(REGISTRY, "person", subjects + ["B" * 22], PERSON, "child-allowance-eligibility")
    assert table.num_rows == 200
    assert set(table.column("subject").to_pylist()) == set(subjects)
    positions = set(table.column("audit_record").to_pylist())  # one exchange: one record, naming all 200
    assert len(positions) == 1 and min(positions) >= before
    assert mesh.audit_size(CHILD, since=before) == 1
    pages = mesh.rows(
        "audit",
        select(subject_pages.c.subjects)
        .where(subject_pages.c.position == min(positions))
        .order_by(subject_pages.c.page),
    )
    named = [s for (page,) in pages for s in json.loads(page)]
    assert named == sorted(people.convert(subjects, "child-allowance", "audit"))  # the unknown one is not named


def test_a_list_of_the_residents_a_scan_answered_names_each_answered_person_in_its_record(mesh, people):
    """The income of everyone a scan named (as publishing asks it): the hub converts the list using what the scan's
    answer told, and the record still names exactly the persons whose income was answered."""
    services = mesh.client("GOV/digital/services")
    purpose = "specified-public-benefit:test-scan-then-list"
    scanned = services.bulk(REGISTRY, "person", None, ["status"], purpose).column("subject")
    assert len(scanned) > 50  # over PUBLICMESH_HUB_KEEPS_OVER: the hub keeps what the answer told
    taxed = services.bulk("MUNI/012084/local-tax", "assessment", scanned, ["income"], purpose)
    assert 0 < taxed.num_rows < len(scanned)  # children have no assessment
    position = taxed.column("audit_record")[0].as_py()
    pages = mesh.rows(
        "audit",
        select(subject_pages.c.subjects).where(subject_pages.c.position == position).order_by(subject_pages.c.page),
    )
    named = [s for (page,) in pages for s in json.loads(page)]
    assert named == sorted(people.convert(taxed.column("subject").to_pylist(), "services", "audit"))


def test_a_municipalitys_two_scans_share_their_conversion_order_and_subject_pages(mesh):
    """Over PUBLICMESH_HUB_KEEPS_OVER (50 here), the hub keeps a scan's conversion (its handle keys the order) and the
    audit log its subject tree: the household scan after the person scan of the same residents is answered in the
    same order and its record names the person scan's pages. (Had the person scan found what an earlier exchange
    kept, it is the one naming pages.)"""
    services, purpose = mesh.client("GOV/digital/services"), "specified-public-benefit:test-two-scans"
    naha = "MUNI/472018/resident-registry"
    person = services.bulk(naha, "person", None, ["status"], purpose)
    household = services.bulk(naha, "household", None, ["relation"], purpose)
    assert person.num_rows > 50 and household.column("subject").equals(person.column("subject"))
    at = [table.column("audit_record")[0].as_py() for table in (person, household)]
    named = dict(mesh.rows("audit", select(batches.c.position, batches.c.pages_at).where(batches.c.position.in_(at))))
    assert named[at[1]] == at[0] or named[at[0]] is not None


def test_an_answer_keeps_no_trace_of_the_providers_order(mesh, people):
    """Rows in the provider's storage order would be the same for every consumer, who could pair them by position:
    a list is answered in the order asked, a scan in the order of the consumer's own pseudonyms."""
    subjects = people.convert(people.registry(limit=300), "resident-registry", "child-allowance")
    asked = sorted(subjects, reverse=True)  # not the registry's order, nor the consumer's
    listed = mesh.client(CHILD).bulk(REGISTRY, "person", asked, PERSON, "child-allowance-eligibility")
    assert listed.column("subject").to_pylist() == asked
    scanned = mesh.client("GOV/digital/services").bulk(
        REGISTRY, "household", None, ["relation"], "specified-public-benefit:emergency-benefit"
    )
    assert scanned.num_rows > 300
    assert scanned.column("subject").to_pylist() == sorted(scanned.column("subject").to_pylist())


def test_a_long_subject_list_goes_as_an_arrow_column_and_answers_as_the_json_list_does(mesh, people, monkeypatch):
    from publicmesh.protocol import client as client_module

    subjects = people.convert(people.registry(limit=300), "resident-registry", "child-allowance") + ["B" * 22]
    client = mesh.client(CHILD)
    as_json = client.bulk(REGISTRY, "person", subjects, PERSON, "child-allowance-eligibility")
    monkeypatch.setattr(client_module, "ARROW_SUBJECTS_OVER", 100)  # 301 subjects: the Arrow form
    sent = []
    post_bytes = client._post_bytes
    monkeypatch.setattr(
        client, "_post_bytes", lambda path, body, kind: sent.append(kind) or post_bytes(path, body, kind)
    )
    as_arrow = client.bulk(REGISTRY, "person", pa.array(subjects), PERSON, "child-allowance-eligibility")
    assert sent == ["application/vnd.apache.arrow.stream"]

    def rows(table):
        return sorted(table.drop_columns(["audit_record"]).to_pylist(), key=lambda r: r["subject"])

    assert as_arrow.num_rows == 300 and rows(as_arrow) == rows(as_json)  # the forged one unanswered in both
    monkeypatch.setattr(client_module, "_PIECE", 1024)  # the body in pieces, its length stated: the same answer
    assert rows(client.bulk(REGISTRY, "person", pa.array(subjects), PERSON, "child-allowance-eligibility")) == rows(
        as_json
    )
    assert len(sent) == 2


def test_a_malformed_arrow_bulk_request_gets_a_problem(mesh, child_signer):
    from publicmesh.protocol import bulk_wire

    def post(body: bytes):
        headers = {
            **child_signer.sign_request("POST", "/v1/bulk", body, uuid.uuid4().hex),
            "content-type": bulk_wire.ARROW_STREAM,
        }
        return httpx.post(mesh.url("hub") + "/v1/bulk", content=body, headers=headers, timeout=10)

    request = {
        "provider": REGISTRY,
        "dataset": "person",
        "attributes": PERSON,
        "purpose": "child-allowance-eligibility",
    }
    _assert_problem(post(b"not arrow"), 400, "malformed-request")
    _assert_problem(
        post(bulk_wire.request_body(pa.array(["A" * 22]), {**request, "scan": True})), 400, "malformed-request"
    )
    _assert_problem(
        post(bulk_wire.request_body(pa.array(["A" * 22]), {**request, "attributes": []})), 400, "malformed-request"
    )
    refused = post(bulk_wire.request_body(pa.array(["A" * 22]), {**request, "purpose": "pension-payment"}))
    _assert_problem(refused, 403, "not-allowed")


def test_the_number_of_audit_records_equals_the_number_of_exchanges(mesh, people, child_signer):
    subjects = people.convert(people.registry(limit=25), "resident-registry", "child-allowance")
    before = mesh.audit_size()
    client = mesh.client(CHILD)
    for s in subjects[:10]:
        client.query(REGISTRY, "person", s, PERSON, "child-allowance-eligibility")
    client.bulk(REGISTRY, "person", subjects[10:], PERSON, "child-allowance-eligibility")
    refused, _ = _post(mesh, _body(subjects[0], purpose="pension-payment"), child_signer)
    assert refused.status_code == 403
    assert mesh.audit_size(CHILD, since=before) == 10 + 1


def test_the_catalog_lists_datasets_what_a_member_may_use_and_openapi(mesh):
    listing = httpx.get(mesh.url("hub") + "/v1/catalog", params={"consumer": CHILD}).json()
    registry = next(p for p in listing if p["member"] == REGISTRY)
    household = next(d for d in registry["datasets"] if d["name"] == "household")
    assert {a["name"] for a in household["attributes"]} == {"relation", "household_size", "members", "head"}
    assert {a["affair"] for a in household["allowed"]} == {"child-allowance-eligibility"}
    other = next(p for p in listing if p["member"] == "MUNI/131016/resident-registry")
    assert all(not d["allowed"] for d in other["datasets"])
    spec = httpx.get(mesh.url("hub") + f"/v1/catalog/{REGISTRY}/household/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/v1/query" in spec["paths"]
    assert httpx.get(mesh.url("hub") + "/openapi.json").json()["paths"]["/v1/query"]
