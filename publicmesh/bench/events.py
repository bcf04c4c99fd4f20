"""Event transports, embedded and JetStream in one run: events per second from publish to the subscriber's ack, and
the lag of each event (publish call to ack done), flat out and at an offered rate.

A publisher publishes pages (as the hub's relay does) while a subscriber fetches and acks pages, both in one event
loop as in the hub. JetStream is a NATS server given by URL, or one this run starts (Debian's nats-server) in a
temporary folder.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from publicmesh.events import ConsumerConfig, Event, EventTransport, StoreTransport
from publicmesh.events.jetstream import JetStreamTransport
from publicmesh.settings import Settings
from publicmesh.storage import engine_for

TOPIC = "MUNI.012084.resident-registry.birth.012084"
SUBSCRIBER = "GOV/mhlw/health-insurance"


def run(
    events: int = 50_000,
    page: int = 500,
    rate: int = 10_000,
    seconds: float = 5.0,
    nats_url: str = "",
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Both transports, each flat out (``events`` events) and at ``rate`` events/s for ``seconds``."""
    say = progress or (lambda _: None)
    result: dict = {"events": events, "page": page, "offered_rate": rate}
    with tempfile.TemporaryDirectory(prefix="publicmesh-bench-events-") as tmp:
        engine = engine_for("events", Settings(data_dir=Path(tmp), database_url=""))  # as the hub opens it
        try:
            say("embedded (SQLite) …")
            result["embedded"] = asyncio.run(_both(lambda: StoreTransport(engine), events, page, rate, seconds))
        finally:
            engine.dispose()
        with _nats(nats_url, Path(tmp)) as url:
            if not url:
                result["jetstream"] = {"skipped": "no NATS server: give --nats-url or install nats-server"}
                return result
            say(f"JetStream ({url}) …")
            stream = f"BENCH_{uuid.uuid4().hex[:12]}"
            result["jetstream"] = asyncio.run(
                _both(lambda: JetStreamTransport(url, stream=stream), events, page, rate, seconds)
            )
            asyncio.run(JetStreamTransport(url, stream=stream).delete_stream())
    return result


async def _both(
    open_transport: Callable[[], EventTransport], events: int, page: int, rate: int, seconds: float
) -> dict:
    transport = open_transport()
    try:
        flat_out = await _measure(transport, "max", events, page, None)
        paced = await _measure(transport, "paced", int(rate * seconds), max(1, rate // 100), rate)
    finally:
        if isinstance(transport, JetStreamTransport):
            await transport.close()
    return {"max": flat_out, "paced": paced}


async def _measure(transport: EventTransport, tag: str, count: int, page: int, rate: int | None) -> dict:
    """Publishes ``count`` events in pages (every 10 ms at ``rate``, else back to back) while a subscriber takes them."""
    subscriber = f"{SUBSCRIBER}-{tag}"
    await transport.subscribe(subscriber, [f"MUNI.*.resident-registry.birth.{tag}"], ConsumerConfig(ack_wait=60.0))
    published_at: dict[str, float] = {}
    lags: list[float] = []
    started = time.perf_counter()

    async def publish() -> None:
        for n, first in enumerate(range(0, count, page)):
            batch = [_event(tag, i) for i in range(first, min(first + page, count))]
            if rate:
                await asyncio.sleep(max(0.0, started + n * page / rate - time.perf_counter()))
            now = time.perf_counter()
            for e in batch:
                published_at[e.id] = now
            await transport.publish(batch)

    async def consume() -> None:
        while len(lags) < count:
            got = await transport.fetch(subscriber, 500, wait=0.05)
            if got:
                await transport.ack(subscriber, [d.event.id for d in got])
                done = time.perf_counter()
                lags.extend(done - published_at[d.event.id] for d in got)

    await asyncio.wait_for(asyncio.gather(publish(), consume()), timeout=max(120.0, count / 500))
    elapsed = time.perf_counter() - started
    lag = np.array(lags)
    return {
        "events_per_s": round(count / elapsed),
        "seconds": round(elapsed, 2),
        "lag_p50_ms": round(float(np.percentile(lag, 50)) * 1000, 1),
        "lag_p99_ms": round(float(np.percentile(lag, 99)) * 1000, 1),
    }


def _event(tag: str, i: int) -> Event:
    return Event(
        id=f"MUNI/012084/resident-registry:{tag}-{i}",
        topic=f"MUNI.012084.resident-registry.birth.{tag}",
        kind="birth",
        source="MUNI/012084/resident-registry",
        subject=f"P{i:012d}",
        payload={"child": f"P{i:012d}", "parent": f"P{i + 1:012d}", "birth_date": "2026-12-07"},
        occurred_at="2026-12-07T00:00:00+00:00",
    )


@contextmanager
def _nats(url: str, folder: Path) -> Iterator[str]:
    """The NATS server to measure: the one given, or one started here if nats-server is installed."""
    server = shutil.which("nats-server") or ("/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else "")
    if url or not server:
        yield url
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [server, "-js", "-sd", str(folder / "jetstream"), "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
