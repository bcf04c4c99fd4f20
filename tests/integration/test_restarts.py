"""Parts that restart: what a part promised before it died still holds after (replays stay refused)."""

from __future__ import annotations

import uuid

import httpx
import orjson

from publicmesh.runtime.topology import part

CHILD = "MUNI/012084/child-allowance"
REGISTRY = "MUNI/012084/resident-registry"


def test_a_request_replayed_after_a_hub_restart_is_refused(mesh, people):
    subject = people.convert(people.registry(limit=3), "resident-registry", "child-allowance")[0]
    body = orjson.dumps(
        {
            "provider": REGISTRY,
            "dataset": "person",
            "subject": subject,
            "attributes": ["family_name", "birth_date"],
            "purpose": "child-allowance-eligibility",
        }
    )
    headers = {
        **mesh.client(CHILD).signer.sign_request("POST", "/v1/query", body, uuid.uuid4().hex),
        "content-type": "application/json",
    }
    first = httpx.post(mesh.url("hub") + "/v1/query", content=body, headers=headers, timeout=10)
    assert first.status_code == 200, first.text

    mesh.supervisor.kill("hub")  # kill -9: nothing is flushed on the way out
    mesh.supervisor.start_part(part(mesh.settings, "hub"))

    again = httpx.post(mesh.url("hub") + "/v1/query", content=body, headers=headers, timeout=10)
    assert again.status_code == 401, again.text
    assert again.json()["type"] == "urn:publicmesh:problem:replayed"
    fresh = {**headers, **mesh.client(CHILD).signer.sign_request("POST", "/v1/query", body, uuid.uuid4().hex)}
    assert httpx.post(mesh.url("hub") + "/v1/query", content=body, headers=fresh, timeout=10).status_code == 200
