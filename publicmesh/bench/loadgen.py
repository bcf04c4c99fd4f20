"""A load-generating process: signed POSTs at fixed concurrency for a fixed time, latencies recorded."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import aiohttp
import orjson
import uvloop

from publicmesh.protocol.ca import read_private_key
from publicmesh.protocol.signatures import Signer
from publicmesh.protocol.trust import CERTIFICATE_HEADER, certificate_header


def worker(
    url: str,
    path: str,
    member: str,
    key_path: str,
    bodies: list[dict],
    concurrency: int,
    seconds: float,
    warmup_s: float,
    out,
) -> None:
    """Runs in its own process; puts (count, errors, latencies_ms, statuses, sent, cpu_s) on ``out``: ``sent`` counts
    the warm-up's answers too, and ``cpu_s`` is this process's processor time while it sent them."""
    key_file = Path(key_path)
    signer = Signer(member, read_private_key(key_file))
    certificate = certificate_header(key_file.with_suffix(".pem").read_text())
    started = time.process_time()
    result = uvloop.run(_drive(url, path, signer, certificate, bodies, concurrency, seconds, warmup_s))
    out.put((*result, time.process_time() - started))


async def _drive(url, path, signer, certificate, bodies, concurrency, seconds, warmup_s):
    latencies: list[float] = []
    errors = sent = 0
    statuses: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        measure_from = start + warmup_s
        stop_at = measure_from + seconds

        async def one_client(k: int):
            nonlocal errors, sent
            i = k
            while True:
                now = time.perf_counter()
                if now >= stop_at:
                    return
                payload = orjson.dumps(bodies[i % len(bodies)])
                i += concurrency
                headers = signer.sign_request("POST", path, payload, uuid.uuid4().hex)
                headers["content-type"] = "application/json"
                headers[CERTIFICATE_HEADER] = certificate
                t0 = time.perf_counter()
                try:
                    async with session.post(url + path, data=payload, headers=headers) as response:
                        await response.read()
                        status = response.status
                except aiohttp.ClientError:
                    status = 0
                t1 = time.perf_counter()
                sent += 1
                if t0 >= measure_from and t1 <= stop_at:
                    latencies.append((t1 - t0) * 1000)
                    statuses[status] = statuses.get(status, 0) + 1
                    if status != 200:
                        errors += 1

        await asyncio.gather(*(one_client(k) for k in range(concurrency)))
    return len(latencies), errors, latencies, statuses, sent
