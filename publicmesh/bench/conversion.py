"""Pseudonym conversion for a publish: the number service over HTTP, JSON lists against Arrow columns, same run.

``python -m publicmesh.bench.conversion [--pseudonyms N] [--port P] [--runs R]``: the number service runs as its own
process (as in the mesh); this process plays the hub, converting one Arrow column into two targets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa

from publicmesh.hub.numbers_client import NumbersClient
from publicmesh.numbers.keys import load_or_create_master
from publicmesh.numbers.pseudonyms import PseudonymService
from publicmesh.protocol.ca import MeshCA
from publicmesh.protocol.members import AUDIT_DOMAIN, HUB, NUMBERS
from publicmesh.protocol.outbound import Outbound
from publicmesh.protocol.signatures import Signer, Verifier
from publicmesh.protocol.trust import TrustStore, certificate_header
from publicmesh.runtime.provision import member_key
from publicmesh.settings import Settings

SOURCE, TARGETS = "resident-registry", ("services", AUDIT_DOMAIN)


def _start_numbers(data_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PUBLICMESH_DATA_DIR": str(data_dir), "PUBLICMESH_BASE_PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", "publicmesh.runtime.serve", "numbers"], env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the number service did not start")


def _hub_outbound(settings: Settings, ca: MeshCA) -> Outbound:
    """The hub's side, with its own key; the number service's key is made here too, before it starts."""
    hub_key, hub_pem = member_key(settings, ca, HUB)
    _, numbers_pem = member_key(settings, ca, NUMBERS)
    trust = TrustStore(ca.certificate)
    trust.add_pem(numbers_pem)
    return Outbound(Signer(str(HUB), hub_key), certificate_header(hub_pem), Verifier(trust.key, 300), 120)


async def _json_form(client: NumbersClient, column: pa.StringArray) -> dict[str, pa.Array]:
    # What the hub does today around convert_many: Python lists out of Arrow, and Arrow again from the lists.
    listed = await client.convert_many(column.to_pylist(), SOURCE, TARGETS)
    return {t: pa.array(values, pa.string()) for t, values in listed.items()}


async def _arrow_form(client: NumbersClient, column: pa.StringArray) -> dict[str, pa.Array]:
    return await client.convert_arrays(column, SOURCE, TARGETS)


async def _convert_both(client: NumbersClient, column: pa.StringArray, runs: int) -> dict:
    """Alternating runs of both forms (so both see the same machine); the answers must agree."""
    seconds: dict[str, list[float]] = {"json": [], "arrow": []}
    for _ in range(runs):
        answers = {}
        for name, form in (("json", _json_form), ("arrow", _arrow_form)):
            start = time.perf_counter()
            answers[name] = await form(client, column)
            seconds[name].append(round(time.perf_counter() - start, 3))
        if any(not answers["arrow"][t].equals(answers["json"][t]) for t in TARGETS):
            raise AssertionError("the Arrow and JSON forms answered differently")
    json_s, arrow_s = statistics.median(seconds["json"]), statistics.median(seconds["arrow"])
    return {
        "json_s": json_s,
        "arrow_s": arrow_s,
        "ratio": round(json_s / arrow_s, 1),
        "json_runs": seconds["json"],
        "arrow_runs": seconds["arrow"],
    }


def run(pseudonyms: int = 2_000_000, port: int = 9790, runs: int = 3) -> dict:
    """Median seconds to convert ``pseudonyms`` into two targets through the HTTP number service, both forms."""
    with tempfile.TemporaryDirectory(prefix="bench-conversion-") as folder:
        settings = Settings(data_dir=Path(folder))
        ca = MeshCA.load_or_create(settings.keys_dir)
        service = PseudonymService(load_or_create_master(settings.keys_dir))
        column = service.enrol(np.arange(pseudonyms), [SOURCE])[SOURCE]
        outbound = _hub_outbound(settings, ca)
        process = _start_numbers(settings.data_dir, port)
        try:

            async def session():
                await outbound.start()
                try:
                    return await _convert_both(
                        NumbersClient(outbound, f"http://127.0.0.1:{port}", str(NUMBERS), settings.hub_keeps_over),
                        column,
                        runs,
                    )
                finally:
                    await outbound.close()

            figures = asyncio.run(session())
        finally:
            process.terminate()
            process.wait(10)
    return {"pseudonyms": pseudonyms, "targets": len(TARGETS), **figures}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pseudonyms", type=int, default=2_000_000)
    parser.add_argument("--port", type=int, default=9790)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    print(json.dumps(run(arguments.pseudonyms, arguments.port, arguments.runs)))
