"""`publicmesh bench events`: both transports measured in one run, each flat out and at an offered rate."""

from __future__ import annotations

from backends import require_nats

from publicmesh.bench.events import run


def test_the_events_benchmark_measures_both_transports():
    result = run(events=400, page=100, rate=1000, seconds=0.3, nats_url=require_nats())
    for transport in ("embedded", "jetstream"):
        for phase in ("max", "paced"):
            figures = result[transport][phase]
            assert figures["events_per_s"] > 0
            assert 0 <= figures["lag_p50_ms"] <= figures["lag_p99_ms"]
