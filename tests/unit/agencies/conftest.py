"""Agency stores seeded with a small population: SQLite files under a temporary folder, and the same on PostgreSQL
when PUBLICMESH_TEST_DATABASE_URL is set (databases of their own, dropped afterwards)."""

from __future__ import annotations

import os
import secrets
import uuid

import pytest

from publicmesh.numbers.pseudonyms import PseudonymService
from publicmesh.runtime.catalog import AGENCIES
from publicmesh.runtime.seed import populate
from publicmesh.runtime.topology import municipalities
from publicmesh.settings import Settings
from publicmesh.storage import drop_store, engine_for

DATABASE_URL = os.environ.get("PUBLICMESH_TEST_DATABASE_URL", "")
SEEDED = [system for system in AGENCIES if system != "services"]


class Stores:
    """One engine per agency system, all seeded with the same population."""

    def __init__(self, settings: Settings, tag: str):
        self.settings, self.names = settings, {s: f"agencies-{tag}-{s}" if settings.database_url else s for s in SEEDED}
        self.engines = {s: engine_for(name, settings) for s, name in self.names.items()}
        self.service = PseudonymService(secrets.token_bytes(32))

    def seed(self, residents: int, seed_value: int = 11, **options) -> dict:
        return populate(
            self.engines,
            self.service,
            0,
            residents,
            municipalities(),
            seed_value,
            folder=self.settings.data_dir,
            **options,
        )

    def __getitem__(self, system: str):
        return self.engines[system]

    def drop(self) -> None:
        for engine in self.engines.values():
            engine.dispose()
        if self.settings.database_url:
            for name in self.names.values():
                drop_store(name, self.settings)


def open_stores(backend: str, folder) -> Stores:
    if backend == "postgresql" and not DATABASE_URL.startswith("postgresql"):
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL tests: PUBLICMESH_TEST_DATABASE_URL is not set")
        pytest.skip('PostgreSQL tests need PUBLICMESH_TEST_DATABASE_URL (eval "$(scripts/postgres.sh)")')
    settings = Settings(data_dir=folder, database_url=DATABASE_URL if backend == "postgresql" else "")
    return Stores(settings, uuid.uuid4().hex[:10])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stores(request, tmp_path_factory):
    """Seeded once per module and backend; tests read it, never change it."""
    opened = open_stores(request.param, tmp_path_factory.mktemp(f"agencies-{request.param}"))
    opened.seed(400)
    yield opened
    opened.drop()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_stores(request, tmp_path):
    """Empty stores of one test, to seed and change."""
    opened = open_stores(request.param, tmp_path)
    yield opened
    opened.drop()
