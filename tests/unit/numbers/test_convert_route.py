"""The Arrow form of /v1/convert: the same conversion and authorization as the JSON form, columns in and out."""

import numpy as np
import orjson
import pyarrow as pa
import pytest

from publicmesh.numbers.keys import load_or_create_master
from publicmesh.numbers.pseudonyms import PseudonymService
from publicmesh.protocol import convert_wire as wire

PATH = "/v1/convert"


@pytest.fixture(scope="module")
def service(node):
    return PseudonymService(load_or_create_master(node.settings.keys_dir))


@pytest.fixture(scope="module")
def registry(service):
    return service.enrol(np.arange(1000), ["resident-registry", "child-allowance", "audit"])


def post(http, member, body: bytes, content_type: str = wire.ARROW_STREAM, request_id: str = "r1"):
    return http.post(PATH, content=body, headers=member.headers(PATH, body, content_type, request_id))


def arrow_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == f"urn:publicmesh:problem:{slug}" and problem["status"] == status
    return problem


def test_the_hub_converts_a_column_into_a_column_per_target(http, node, registry):
    asked = pa.array(registry["resident-registry"].to_pylist()[:500] + [None, "not-a-pseudonym", ""], pa.string())
    body = wire.request_body(asked, "resident-registry", ("child-allowance", "audit"))
    response = post(http, node.hub, body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == wire.ARROW_STREAM
    answer = wire.read_answer(response.content, ("child-allowance", "audit"), len(asked))
    assert answer["child-allowance"].to_pylist() == registry["child-allowance"].to_pylist()[:500] + [None] * 3
    assert answer["audit"].to_pylist() == registry["audit"].to_pylist()[:500] + [None] * 3


def test_arrow_and_json_forms_answer_the_same(http, node, registry):
    asked = registry["child-allowance"].to_pylist()[:50] + ["x" * 22, None]
    columns = post(
        http,
        node.hub,
        wire.request_body(pa.array(asked, pa.string()), "child-allowance", ("audit",)),
        request_id="same-1",
    )
    doc = orjson.dumps({"source": "child-allowance", "targets": ["audit"], "pseudonyms": asked})
    listed = post(http, node.hub, doc, "application/json", request_id="same-2")
    assert listed.status_code == 200 and columns.status_code == 200
    assert (
        wire.read_answer(columns.content, ("audit",), len(asked))["audit"].to_pylist()
        == listed.json()["converted"]["audit"]
    )


def test_only_the_hub_converts(http, node, registry):
    body = wire.request_body(registry["resident-registry"][:5], "resident-registry", ("child-allowance",))
    arrow_problem(post(http, node.stranger, body), 403, "not-a-consumer")


def test_an_unsigned_or_altered_request_is_refused(http, node, registry):
    body = wire.request_body(registry["resident-registry"][:5], "resident-registry", ("child-allowance",))
    assert http.post(PATH, content=body, headers={"content-type": wire.ARROW_STREAM}).status_code == 401
    # The targets travel in the body, so changing them breaks the digest the signature covers.
    headers = node.hub.headers(PATH, body, wire.ARROW_STREAM, "altered")
    other = wire.request_body(registry["resident-registry"][:5], "resident-registry", ("national-tax",))
    arrow_problem(http.post(PATH, content=other, headers=headers), 401, "digest-mismatch")


def stream_with(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


ROUTING = {b"source": b"resident-registry", b"targets": b'["child-allowance"]'}
BAD_BODIES = {
    "not arrow": b'{"source": "resident-registry"}',
    "cut short": wire.request_body(pa.array(["A" * 22] * 100), "resident-registry", ("audit",))[:-200],
    "no metadata": stream_with(pa.table({"pseudonym": pa.array(["A" * 22])})),
    "targets not a list": stream_with(
        pa.table({"pseudonym": pa.array(["A" * 22])}).replace_schema_metadata(
            {**ROUTING, b"targets": b'"child-allowance"'}
        )
    ),
    "no targets": stream_with(
        pa.table({"pseudonym": pa.array(["A" * 22])}).replace_schema_metadata({**ROUTING, b"targets": b"[]"})
    ),
    "bad target": stream_with(
        pa.table({"pseudonym": pa.array(["A" * 22])}).replace_schema_metadata(
            {**ROUTING, b"targets": b'["' + b"x" * 300 + b'"]'}
        )
    ),
    "integers": stream_with(pa.table({"pseudonym": pa.array([1, 2])}).replace_schema_metadata(ROUTING)),
    "other column": stream_with(pa.table({"subject": pa.array(["A" * 22])}).replace_schema_metadata(ROUTING)),
    "two columns": stream_with(
        pa.table({"pseudonym": pa.array(["A" * 22]), "x": pa.array(["y"])}).replace_schema_metadata(ROUTING)
    ),
}


@pytest.mark.parametrize("name", BAD_BODIES)
def test_a_body_that_is_no_conversion_is_a_malformed_request(http, node, name):
    problem = arrow_problem(post(http, node.hub, BAD_BODIES[name], request_id=f"bad-{name}"), 400, "malformed-request")
    assert problem["detail"]


def test_corrupt_offsets_are_caught_before_decoding(http, node):
    array = pa.array(["A" * 22] * 4)
    offsets = np.frombuffer(array.buffers()[1], np.int32).copy()
    offsets[2] = 10_000  # points far outside the data buffer
    corrupt = pa.StringArray.from_buffers(4, pa.py_buffer(offsets), array.buffers()[2])
    body = stream_with(pa.table({"pseudonym": corrupt}).replace_schema_metadata(ROUTING))
    arrow_problem(post(http, node.hub, body, request_id="corrupt"), 400, "malformed-request")


def test_a_batch_over_the_arrow_limit_is_too_large(http, node):
    body = wire.request_body(pa.nulls(wire.ARROW_MAX_BATCH + 1, pa.string()), "resident-registry", ("audit",))
    arrow_problem(post(http, node.hub, body, request_id="large"), 413, "payload-too-large")


def test_the_json_form_keeps_its_own_limit(http, node):
    from publicmesh.protocol.convert_wire import MAX_BATCH

    doc = orjson.dumps({"source": "a", "targets": ["b"], "pseudonyms": ["A" * 22] * (MAX_BATCH + 1)})
    arrow_problem(post(http, node.hub, doc, "application/json", request_id="json-large"), 400, "malformed-request")
