"""Seeding: a synthetic population enrolled with the number service and written to each agency's own store.

Each agency receives only its own pseudonyms; the My Numbers are derived and dropped inside ``numbers``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import polars as pl

from publicmesh.agencies.catalog import AGENCIES
from publicmesh.numbers.app import metadata as numbers_metadata, reserve_serials
from publicmesh.numbers.keys import load_or_create_master
from publicmesh.numbers.pseudonyms import PseudonymService
from publicmesh.population import generate
from publicmesh.settings import Settings
from publicmesh.storage import drop_store, engine_for


def is_seeded(settings: Settings) -> bool:
    from sqlalchemy import inspect, text

    engine = engine_for("resident-registry", settings)
    try:
        if not inspect(engine).has_table("residents"):
            return False
        with engine.connect() as conn:
            return conn.execute(text("SELECT 1 FROM residents LIMIT 1")).first() is not None
    finally:
        engine.dispose()


def fresh_stores(settings: Settings) -> None:
    """Drop every store: agencies, the number service's counter, the hub's registry and cursors, the audit log.

    Keys stay; run ``provision`` afterwards to register the members again.
    """
    for store in [*AGENCIES, "numbers", "audit", "hub", "identity", "notices", "consent", "accounts"]:
        drop_store(store, settings)


def seed(settings: Settings, residents: int, municipalities: tuple[str, ...], seed_value: int,
         progress: Callable[[int], None] | None = None, chunk_size: int = 250_000) -> dict:
    """Write the population to every agency; returns counts and timings."""
    started = time.perf_counter()
    service = PseudonymService(load_or_create_master(settings.keys_dir))
    numbers_engine = engine_for("numbers", settings)
    numbers_metadata.create_all(numbers_engine)
    first = reserve_serials(numbers_engine, residents)
    engines = {}
    for system, agency in AGENCIES.items():
        engines[system] = engine_for(system, settings)
        agency.metadata.create_all(engines[system])
    written = 0
    for chunk in generate(residents, seed=seed_value, municipalities=municipalities, chunk_size=chunk_size):
        frame = pl.from_arrow(chunk)
        serials = first + frame["person_index"].to_numpy().astype(np.int64)
        pseudonyms = service.enrol(serials, list(AGENCIES))
        for system, agency in AGENCIES.items():
            with engines[system].begin() as conn:
                agency.seed(conn, frame, pseudonyms[system].to_pylist(), municipalities)
        written += frame.height
        if progress:
            progress(frame.height)
    for engine in [*engines.values(), numbers_engine]:
        engine.dispose()
    from publicmesh.runtime.demo import issue_demo_identities, issue_demo_staff

    issue_demo_identities(settings)
    issue_demo_staff(settings, municipalities)
    return {"residents": written, "seconds": round(time.perf_counter() - started, 2), "first_serial": first}
