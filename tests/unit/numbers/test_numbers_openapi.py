"""The number service's OpenAPI document, and the bodies the fuzzer found answered 500 (now 400 problems)."""

from __future__ import annotations

import orjson
import pytest

from publicmesh.numbers.pseudonyms import PseudonymService
from publicmesh.protocol.ca import MeshCA
from publicmesh.protocol.members import MemberId
from publicmesh.runtime.provision import member_key

REGISTRY = MemberId("MUNI", "012084", "resident-registry")


@pytest.fixture(scope="module")
def registry(node):
    """A resident registry, signing as the hub's fixture does (conftest.Member)."""
    return type(node.hub)(REGISTRY, *member_key(node.settings, MeshCA.load_or_create(node.settings.keys_dir), REGISTRY))


def test_the_document_describes_the_signed_routes_and_their_problems(http):
    doc = http.get("/openapi.json").json()
    assert doc["openapi"] == "3.1.0" and set(doc["paths"]) == {
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/convert",
        "/v1/enrol",
    }
    convert = doc["paths"]["/v1/convert"]["post"]
    assert set(convert["requestBody"]["content"]) == {"application/json", "application/vnd.apache.arrow.stream"}
    assert convert["security"] == [{"meshSignature": []}]
    scheme = doc["components"]["securitySchemes"]["meshSignature"]
    assert "RFC 9421" in scheme["description"] and scheme["name"] == "Signature"
    assert {"400", "401", "403", "413"} <= set(convert["responses"])
    assert doc["components"]["schemas"]["EnrolRequest"]["properties"]["count"]["maximum"] == 1000
    assert http.get("/docs").headers["content-security-policy"].startswith("default-src 'none'")


@pytest.mark.parametrize("body", [b"false", b"[]", b'"x"', b'{"count": "2"}', b'{"count": true}', b'{"count": 0}'])
def test_an_enrolment_that_is_not_an_object_with_a_count_is_a_400_problem(http, registry, body):
    response = http.post("/v1/enrol", content=body, headers=registry.headers("/v1/enrol", body, "application/json"))
    assert response.status_code == 400 and response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:publicmesh:problem:malformed-request"


def test_a_registry_enrols_a_newborn(http, registry):
    body = orjson.dumps({"count": 2})
    response = http.post("/v1/enrol", content=body, headers=registry.headers("/v1/enrol", body, "application/json"))
    assert response.status_code == 200 and len(response.json()["pseudonyms"]) == 2


@pytest.mark.parametrize(
    "body",
    [
        b"false",
        b"[1]",
        b'"pseudonyms"',
        b'{"source": "a", "targets": "bcd", "pseudonyms": []}',
        b'{"source": "a", "targets": [], "pseudonyms": []}',
        b'{"source": "a", "targets": [1], "pseudonyms": []}',
        b'{"source": ["a"], "targets": ["b"], "pseudonyms": []}',
        orjson.dumps({"source": "a", "targets": [f"t{i}" for i in range(17)], "pseudonyms": []}),
    ],
)
def test_a_conversion_that_is_not_an_object_of_domains_is_a_400_problem(http, node, body):
    response = http.post("/v1/convert", content=body, headers=node.hub.headers("/v1/convert", body, "application/json"))
    assert response.status_code == 400 and response.json()["type"] == "urn:publicmesh:problem:malformed-request"


def test_an_unexpected_error_is_a_signed_500_problem(http, node, monkeypatch):
    def fails(*_args):
        raise RuntimeError("a fault of the service's own")

    monkeypatch.setattr(PseudonymService, "convert", fails)
    body = orjson.dumps({"source": "a", "targets": ["b"], "pseudonyms": ["x"]})
    response = http.post("/v1/convert", content=body, headers=node.hub.headers("/v1/convert", body, "application/json"))
    assert response.status_code == 500 and response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:publicmesh:problem:internal-error" and "signature" in response.headers
