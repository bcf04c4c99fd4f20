"""Agency stores seeded with a small population, on each backend (see backends.py): SQLite files under a temporary
folder, PostgreSQL databases of their own, dropped afterwards."""

from __future__ import annotations

import secrets

import pytest
from backends import BACKENDS, backend_settings, drop, store_name

from publicmesh.numbers.pseudonyms import PseudonymService
from publicmesh.runtime.catalog import AGENCIES
from publicmesh.runtime.seed import populate
from publicmesh.runtime.topology import municipalities
from publicmesh.settings import Settings
from publicmesh.storage import engine_for

SEEDED = [system for system in AGENCIES if system != "services"]


class Stores:
    """One engine per agency system, all seeded with the same population."""

    def __init__(self, settings: Settings):
        self.settings, self.names = settings, {s: store_name(settings, s) for s in SEEDED}
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
        for system, engine in self.engines.items():
            drop(self.settings, engine, self.names[system])


def open_stores(backend: str, folder) -> Stores:
    return Stores(backend_settings(backend, folder))


@pytest.fixture(scope="module", params=BACKENDS)
def stores(request, tmp_path_factory):
    """Seeded once per module and backend; tests read it, never change it."""
    opened = open_stores(request.param, tmp_path_factory.mktemp(f"agencies-{request.param}"))
    opened.seed(400)
    yield opened
    opened.drop()


@pytest.fixture(params=BACKENDS)
def fresh_stores(request, tmp_path):
    """Empty stores of one test, to seed and change."""
    opened = open_stores(request.param, tmp_path)
    yield opened
    opened.drop()
