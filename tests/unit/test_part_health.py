"""Every part answers GET /healthz, /readyz and /metrics unsigned, as its process builds it: ready on its stores and
keys, a 503 not-ready problem once its store is gone, and its requests counted by route template, not raw path."""

from __future__ import annotations

import re
import shutil

import pytest
from starlette.testclient import TestClient

from publicmesh.audit import load_or_create_audit_key
from publicmesh.runtime.provision import provision
from publicmesh.runtime.serve import build_app
from publicmesh.settings import Settings, get_settings

PARTS = ("numbers", "witness", "hub", "portal", "console", "pension", "services")


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory):
    """The keys and the hub's registry of a mesh, made once and copied for each part."""
    data = tmp_path_factory.mktemp("mesh") / "data"
    settings = Settings(data_dir=data, database_url="")
    provision(settings)
    load_or_create_audit_key(settings.keys_dir)  # the hub makes it, the portal reads it
    return data


@pytest.fixture
def part(request, provisioned, tmp_path, monkeypatch):
    """(a TestClient of the part named by the test's parameter, built as `publicmesh up` builds it; its data dir)"""
    data = tmp_path / "data"
    shutil.copytree(provisioned, data)
    monkeypatch.setenv("PUBLICMESH_DATA_DIR", str(data))
    monkeypatch.delenv("PUBLICMESH_DATABASE_URL", raising=False)  # SQLite files, which the test can remove
    get_settings.cache_clear()
    try:
        yield TestClient(build_app(request.param)), data  # no lifespan: nothing runs but the routes asked
    finally:
        get_settings.cache_clear()


def counted(metrics: str, name: str, **labels: str) -> float:
    """The value of the sample ``name`` with exactly ``labels`` in a Prometheus text answer (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    found = re.search(rf"^{re.escape(name)}{{{re.escape(wanted)}}} (\S+)$", metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("part", PARTS, indirect=True)
def test_a_part_is_alive_ready_and_counts_its_requests_then_not_ready_without_its_store(part):
    client, data = part
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    labels = {"route": "/healthz", "method": "GET", "status": "2xx"}
    assert counted(metrics.text, "publicmesh_http_requests_total", **labels) == 1
    client.get("/healthz")
    assert counted(client.get("/metrics").text, "publicmesh_http_requests_total", **labels) == 2
    doc = client.get("/openapi.json").json()
    for path in ("/healthz", "/readyz", "/metrics"):
        assert "security" not in doc["paths"][path]["get"], path

    shutil.rmtree(data)  # the store's files (and the keys') removed under the running part
    gone = client.get("/readyz")
    assert gone.status_code == 503 and gone.headers["content-type"] == "application/problem+json"
    assert gone.json()["type"] == "urn:publicmesh:problem:not-ready" and str(data) not in gone.text
    assert client.get("/healthz").status_code == 200  # alive all the same: restarting it would not bring it back


@pytest.mark.parametrize("part", ["console"], indirect=True)
def test_a_request_is_counted_under_its_route_template_not_its_path(part):
    client, _ = part
    assert client.get("/cases/12345", follow_redirects=False).status_code in (302, 303, 307)  # to the login page
    client.get("/no/such/page/67890")
    client.request("BREW", "/healthz")  # any token is a method
    metrics = client.get("/metrics").text
    assert counted(
        metrics, "publicmesh_http_requests_total", route="/cases/{application_id}", method="GET", status="3xx"
    )
    assert counted(metrics, "publicmesh_http_requests_total", route="(unmatched)", method="GET", status="4xx") == 1
    assert "12345" not in metrics and "67890" not in metrics and "BREW" not in metrics
    assert counted(metrics, "publicmesh_http_requests_total", route="/healthz", method="OTHER", status="4xx") == 1
    assert 'publicmesh_http_request_duration_seconds_count{method="GET",route="/cases/{application_id}"} 1.0' in metrics


@pytest.mark.parametrize("part", ["hub"], indirect=True)
def test_the_hub_counts_exchanges_by_rule_and_outcome_and_the_audit_log_size(part):
    client, _ = part
    assert client.post("/v1/query", json={}).status_code == 401  # unsigned: taken by the hub's fast path
    metrics = client.get("/metrics").text
    assert counted(metrics, "publicmesh_http_requests_total", route="/v1/query", method="POST", status="4xx") == 1
    outcome = {"kind": "query", "rule": "none", "outcome": "missing-signature"}
    assert counted(metrics, "publicmesh_hub_exchanges_total", **outcome) == 1
    assert re.search(r"^publicmesh_audit_log_size 0\.0$", metrics, re.MULTILINE)


@pytest.mark.parametrize("part", ["pension"], indirect=True)
def test_a_node_tells_its_outbox_depth(part):
    client, _ = part
    assert re.search(r"^publicmesh_outbox_depth 0\.0$", client.get("/metrics").text, re.MULTILINE)
