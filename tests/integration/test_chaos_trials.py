"""`publicmesh chaos` with a small number of trials: processes killed with SIGKILL under load (a hub or portal
replica, an agency node, the number service, the services part, a publisher worker) while services are published
and residents apply; then no notice or acknowledged application lost or twice, the audit log verifying and the
queries that failed even after retrying under 1%."""

from __future__ import annotations

import os
import shutil

import pytest

from publicmesh.runtime.chaos import run

# Its mesh's parts at +0..+17 and the replicas at +100..+112 of this: clear of the other test meshes.
BASE_PORT = int(os.environ.get("PUBLICMESH_TEST_BASE_PORT", 9100)) + 700


@pytest.mark.skipif(shutil.which("haproxy") is None and not os.path.exists("/usr/sbin/haproxy"), reason="no HAProxy")
def test_a_few_kills_under_load_lose_nothing():
    # seed 25 kills numbers, hub-1, portal-2 and resident-registry
    result = run(4, residents_count=600, every_s=2.5, base_port=BASE_PORT, seed_value=25)
    assert result["trials"] == 4 and len(result["kills"]) == 4
    assert result["eligible"] > 0 and result["publishes"] >= 1
    assert result["applications"]["applications"] > 0  # the demo residents applied while parts were killed
    assert result["lost"] == 0 and result["duplicates"] == 0, result
    assert result["verify"] == "ok", result["verify"]
    assert result["errors_pct"] <= 1.0, result
    print(f"\nchaos: {result}")
