"""Parts that restart: the supervisor starts a dead part again while the others keep serving, and what a part
promised before it died still holds after (replays stay refused)."""

from __future__ import annotations

import os
import signal
import uuid

import httpx
import orjson

from publicmesh.protocol.ca import read_private_key
from publicmesh.protocol.client import HubError
from publicmesh.protocol.members import HUB
from publicmesh.protocol.signatures import Signer
from publicmesh.runtime.supervisor import Backoff
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


def test_a_part_killed_is_restarted_while_the_others_keep_serving(mesh, people):
    supervisor = mesh.supervisor
    local_tax = people.convert(people.registry(limit=1), "resident-registry", "local-tax")[0]
    client = mesh.client("MUNI/012084/local-tax")

    def answered(provider: str, dataset: str, attribute: str) -> int:
        """The status of a query the provider answered (found or not), through the hub."""
        try:
            client.query(provider, dataset, local_tax, [attribute], "resident-tax-assessment")
        except HubError as error:
            return error.status
        return 200

    assert answered("GOV/jps/pension", "pension", "kind") in (200, 404)
    others = {name: process for name, process in supervisor.processes.items() if name != "pension"}
    killed = supervisor.processes["pension"]
    supervisor.watch(Backoff(first_s=2))  # down long enough to be seen down
    try:
        os.kill(killed.pid, signal.SIGKILL)  # as an operator's kill -9, behind the supervisor's back
        killed.wait()
        # Meanwhile the mesh serves what does not need the pension node.
        assert answered("GOV/jps/pension", "pension", "kind") == 503
        assert answered("GOV/nta/national-tax", "income", "income") in (200, 404)

        def serves_again():
            restarted = supervisor.processes.get("pension")
            if restarted is None or restarted is killed:
                return False
            try:
                return httpx.get(mesh.url("pension") + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        mesh.wait_for(serves_again, 30)
        assert answered("GOV/jps/pension", "pension", "kind") in (200, 404)
        assert supervisor.restarts["pension"] == 1
        assert all(supervisor.processes[name] is process and process.poll() is None for name, process in others.items())
        assert "pension restarted" in (supervisor.log_dir / "pension.log").read_text(errors="replace")
    finally:
        supervisor.unwatch()


def test_a_hub_call_replayed_to_the_portal_after_its_restart_is_refused(mesh):
    keys = mesh.settings.keys_dir / "members"
    hub = Signer(str(HUB), read_private_key(keys / f"{HUB.file_stem}.key"))
    body = orjson.dumps({"events": []})
    headers = {**hub.sign_request("POST", "/v1/events", body, uuid.uuid4().hex), "content-type": "application/json"}
    assert httpx.post(mesh.url("portal") + "/v1/events", content=body, headers=headers, timeout=10).status_code == 200

    mesh.supervisor.kill("portal")
    mesh.supervisor.start_part(part(mesh.settings, "portal"))

    again = httpx.post(mesh.url("portal") + "/v1/events", content=body, headers=headers, timeout=10)
    assert again.status_code == 401 and "already used" in again.text
