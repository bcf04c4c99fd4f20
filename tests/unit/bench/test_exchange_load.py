"""The exchange benchmark's load generator counts every answer it was sent, warm-up included, for the processor time
per query; and a process's processor seconds are read from /proc."""

from __future__ import annotations

import asyncio
import os
import time

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from publicmesh.bench.exchange import _with_total, cpu_seconds
from publicmesh.bench.loadgen import _drive
from publicmesh.protocol.signatures import Signer


def test_a_process_processor_seconds_grow_as_it_works():
    before = cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    assert cpu_seconds(os.getpid()) >= before + 0.1
    assert cpu_seconds(2**22 + 12345) == 0.0  # no such process


def test_the_load_generator_counts_the_warm_up_answers_apart_from_those_measured():
    async def run():
        app = web.Application()
        app.router.add_post("/v1/query", lambda _request: web.json_response({}))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            signer = Signer("MUNI/012084/child-allowance", Ed25519PrivateKey.generate())
            return await _drive(f"http://127.0.0.1:{port}", "/v1/query", signer, "", [{"a": 1}], 2, 0.3, 0.2)
        finally:
            await runner.cleanup()

    count, errors, latencies, statuses, sent = asyncio.run(run())
    assert errors == 0 and count == len(latencies) == statuses[200] > 0
    assert sent > count  # the warm-up's answers are not measured, but were sent


def test_the_processor_time_per_query_is_summed_over_the_processes():
    assert _with_total({"hub": 0.5, "load": 0.25}) == {"all": 0.75, "hub": 0.5, "load": 0.25}
    assert _with_total({"hub": None}) == {"all": None, "hub": None}
