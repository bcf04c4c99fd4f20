"""`publicmesh bench services` on a small population: it must run end to end and report what the issue asks
for — the figures themselves are read from a real run, not asserted here."""

from __future__ import annotations

import pytest

from publicmesh.bench.services import run


@pytest.mark.timeout(600)
def test_the_services_benchmark_reports_publish_openfisca_and_audit_figures():
    result = run(3_000, browser=False, base_port=9400)
    assert result["residents"] == 3_000 and 0 < result["eligible"] < 3_000
    assert set(result["phases"]) >= {"fetch", "evaluate", "details", "write", "payout"}
    assert set(result["background"]) == {"offers", "notify", "decide"}
    assert result["seconds"] > 0 and result["peak_rss_mb"] > 0
    spent = result["cpu_seconds"]  # the publish's processor time, by part: the publisher and the parts it used
    assert {"publisher", "hub", "numbers", "resident-registry", "local-tax", "portal"} <= spent.keys()
    assert spent["all"] >= sum(t for name, t in spent.items() if name != "all") - 0.5
    # every person read in bulk has an exchange record of the service's purpose
    assert result["audit"]["subjects"] == 3_000
    assert result["notices"] == result["eligible"]
    figures = result["openfisca"]
    assert figures["persons"] == 3_000 and figures["totals_match"]
    assert figures["ours_total_yen"] == result["total_yen"]
    assert figures["openfisca_seconds"] > 0 and figures["ours_seconds"] > 0
