"""The hub routes events over NATS JetStream when PUBLICMESH_EVENTS_URL names a server: a birth reaches the
subscribers through the stream, and the embedded event store stays empty. A small mesh of its own (SQLite)."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from backends import require_nats
from births import register_birth
from sqlalchemy import inspect, select

from publicmesh.agencies import health_insurance, resident_registry
from publicmesh.events.jetstream import JetStreamTransport, consumer_name
from publicmesh.numbers.keys import load_or_create_master
from publicmesh.numbers.pseudonyms import PseudonymService
from publicmesh.runtime.provision import provision
from publicmesh.runtime.seed import fresh_stores, seed
from publicmesh.runtime.supervisor import Supervisor
from publicmesh.runtime.topology import part
from publicmesh.settings import Settings
from publicmesh.storage import engine_for

KITAMI = "012084"


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    url = require_nats()
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("mesh-jetstream"),
        database_url="",
        # +0 and +100: the other integration meshes; +50: the fuzzed parts; a mesh takes about 20 ports
        base_port=int(os.environ.get("PUBLICMESH_TEST_BASE_PORT", 9100)) + 75,
        events_url=url,
        events_stream=f"MESH_{uuid.uuid4().hex[:12]}",
    )
    fresh_stores(settings)
    provision(settings)
    seed(settings, 1000, (KITAMI,), 11)
    supervisor = Supervisor(settings)
    try:
        supervisor.start()
        yield settings
    finally:
        supervisor.stop()
        asyncio.run(JetStreamTransport(url, stream=settings.events_stream).delete_stream())


def _rows(settings: Settings, store: str, query) -> list:
    engine = engine_for(store, settings)
    try:
        with engine.connect() as conn:
            return conn.execute(query).all()
    finally:
        engine.dispose()


def _wait_for(check, timeout_s: float = 60.0):
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def test_a_birth_reaches_its_subscriber_over_jetstream(settings):
    r = resident_registry.residents.c
    mother = _rows(
        settings,
        "resident-registry",
        select(r.pseudonym)
        .where(r.tenant == KITAMI, r.relation == "spouse", r.sex == 2, r.status == "resident")
        .order_by(r.pseudonym)
        .limit(1),
    )[0].pseudonym
    child = register_birth(settings, part(settings, "numbers").url(settings), mother, "陽葵", "ヒマリ", "Himari", 2)
    numbers = PseudonymService(load_or_create_master(settings.keys_dir))
    insured = numbers.convert([child], "resident-registry", ["health-insurance"])["health-insurance"][0]
    coverage = health_insurance.coverage
    _wait_for(lambda: _rows(settings, "health-insurance", select(coverage).where(coverage.c.pseudonym == insured)))

    async def delivered() -> int:
        transport = JetStreamTransport(settings.events_url or "", stream=settings.events_stream)
        try:
            _, js = await transport._connect()
            info = await js.consumer_info(settings.events_stream, consumer_name("GOV/mhlw/health-insurance"))
            return info.delivered.stream_seq or 0
        finally:
            await transport.close()

    assert asyncio.run(delivered()) >= 1  # the health-insurance consumer on the stream had it
    events_store = engine_for("events", settings)
    assert "event_stream" not in inspect(events_store).get_table_names()  # the embedded transport never opened
    events_store.dispose()
