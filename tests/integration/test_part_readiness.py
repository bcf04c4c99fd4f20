"""On the running mesh, every part is ready (/readyz) and exposes Prometheus metrics (/metrics), unsigned."""

from __future__ import annotations

import httpx

from publicmesh.runtime.topology import parts


def test_every_part_is_ready_and_exposes_its_metrics(mesh):
    for part in parts(mesh.settings):
        url = part.url(mesh.settings)
        ready = httpx.get(url + "/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json()["status"] == "ready", (part.name, ready.text)
        metrics = httpx.get(url + "/metrics", timeout=5)
        assert metrics.status_code == 200, part.name
        # the supervisor's own /readyz polls were counted under their route
        assert 'publicmesh_http_requests_total{method="GET",route="/readyz",status="2xx"}' in metrics.text, part.name
    hub = httpx.get(mesh.url("hub") + "/metrics", timeout=5).text
    assert "publicmesh_audit_log_size " in hub and "publicmesh_hub_exchanges_total" in hub
