"""Seeding: a synthetic population enrolled with the number service and written to each agency's own store.

Each agency receives only its own pseudonyms; the My Numbers are derived and dropped inside ``numbers``.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
from sqlalchemy import Engine, inspect, text

from publicmesh.events.jetstream import JetStreamTransport
from publicmesh.numbers.app import metadata as numbers_metadata
from publicmesh.numbers.app import reserve_serials
from publicmesh.numbers.keys import load_or_create_master
from publicmesh.numbers.pseudonyms import PseudonymService
from publicmesh.population import generate
from publicmesh.provider.layout import upgrade
from publicmesh.provider.loading import loading
from publicmesh.runtime.catalog import AGENCIES
from publicmesh.runtime.demo import issue_demo_identities, issue_demo_staff
from publicmesh.runtime.spill import Spill
from publicmesh.settings import Settings
from publicmesh.storage import drop_store, engine_for
from publicmesh.storage.private import private_dir

SPILL_RANGE = 1_000_000  # residents per key range of the spilled rows: a range is sorted in memory


def is_seeded(settings: Settings) -> bool:
    engine = engine_for("resident-registry", settings)
    try:
        if not inspect(engine).has_table("residents"):
            return False
        with engine.connect() as conn:
            return conn.execute(text("SELECT 1 FROM residents LIMIT 1")).first() is not None
    finally:
        engine.dispose()


def fresh_stores(settings: Settings) -> None:
    """Drop every store: agencies, the number service's counter, the hub's registry, the event stream, the audit log
    and the witness's (a new log starts again from size 0).

    Keys stay; run ``provision`` afterwards to register the members again. On JetStream the stream goes too: the
    outboxes start again from id 1, and its duplicate window would take their events for ones it has seen.
    """
    if settings.events_url:
        asyncio.run(JetStreamTransport(settings.events_url, stream=settings.events_stream).delete_stream())
    for store in [
        *AGENCIES,
        "numbers",
        "audit",
        "witness",
        "hub",
        "events",
        "identity",
        "notices",
        "consent",
        "accounts",
    ]:
        drop_store(store, settings)


def seed(
    settings: Settings,
    residents: int,
    municipalities: tuple[str, ...],
    seed_value: int,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = 250_000,
) -> dict:
    """Write the population to every agency; returns counts and timings."""
    started = time.perf_counter()
    service = PseudonymService(load_or_create_master(settings.keys_dir))
    numbers_engine = engine_for("numbers", settings)
    numbers_metadata.create_all(numbers_engine)
    first = reserve_serials(numbers_engine, residents)
    engines = {system: engine_for(system, settings) for system in AGENCIES}
    private_dir(settings.data_dir)
    try:
        timings = populate(
            engines,
            service,
            first,
            residents,
            municipalities,
            seed_value,
            folder=settings.data_dir,
            progress=progress,
            chunk_size=chunk_size,
        )
    finally:
        for engine in [*engines.values(), numbers_engine]:
            engine.dispose()
    issue_demo_identities(settings)
    issue_demo_staff(settings, municipalities)
    return {
        "residents": residents,
        "seconds": round(time.perf_counter() - started, 2),
        "first_serial": first,
        **timings,
    }


def populate(
    engines: dict[str, Engine],
    service: PseudonymService,
    first_serial: int,
    residents: int,
    municipalities: tuple[str, ...],
    seed_value: int,
    *,
    folder: Path,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = 250_000,
) -> dict:
    """The population written to the agencies named in ``engines``, each under its own pseudonyms.

    Chunks are generated, enrolled and spilled under ``folder`` by key range; then each table is written in
    primary-key order, so a clustered table only grows at its end and memory stays that of a chunk or a range."""
    started = time.perf_counter()
    agencies = {system: AGENCIES[system] for system in engines}
    for system, agency in agencies.items():
        agency.metadata.create_all(engines[system])
        upgrade(engines[system], agency.metadata)
    bar, written = _Bar(progress), 0
    with tempfile.TemporaryDirectory(prefix=".seeding-", dir=folder) as spilled:
        spill = Spill(Path(spilled), ranges=min(16, max(1, residents // SPILL_RANGE)))
        try:
            for chunk in generate(residents, seed=seed_value, municipalities=municipalities, chunk_size=chunk_size):
                frame = pl.from_arrow(chunk)
                serials = first_serial + frame["person_index"].to_numpy().astype(np.int64)
                pseudonyms = service.enrol(serials, list(agencies))
                for system, agency in agencies.items():
                    for table, rows in (agency.seed(frame, pseudonyms[system]) or {}).items():
                        spill.add(system, table, rows)
                written += frame.height
                bar.to(written // 2)
            generated = time.perf_counter()
            total, done = sum(spill.rows.values()), 0
            for system, table, partitions in spill.drain():
                with loading(engines[system], table) as loader:
                    for part in partitions:
                        loader.append(part)
                        done += part.num_rows
                        bar.to(written // 2 + (written - written // 2) * done // max(total, 1))
            bar.to(written)
        finally:
            spill.close()
    return {
        "generate_seconds": round(generated - started, 2),
        "write_seconds": round(time.perf_counter() - generated, 2),
    }


class _Bar:
    """Progress in residents: the first half while generating, the second while writing (by rows written)."""

    def __init__(self, progress: Callable[[int], None] | None):
        self.progress, self.shown = progress, 0

    def to(self, residents: int) -> None:
        if self.progress and residents > self.shown:
            self.progress(residents - self.shown)
            self.shown = residents
