"""The storage backends tests run on: SQLite files always, PostgreSQL when PUBLICMESH_TEST_DATABASE_URL is set
(``eval "$(scripts/postgres.sh)"``), and NATS JetStream for events when PUBLICMESH_TEST_NATS_URL is set
(``eval "$(scripts/nats.sh)"``). Under CI such a test fails rather than skips without its server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine

from publicmesh.settings import Settings
from publicmesh.storage import drop_store, engine_for

DATABASE_URL = os.environ.get("PUBLICMESH_TEST_DATABASE_URL", "")
NATS_URL = os.environ.get("PUBLICMESH_TEST_NATS_URL", "")
BACKENDS = ["sqlite", "postgresql"]


def require(backend: str) -> str:
    """The backend, if tests can run on it here; else the test is skipped (failed under CI)."""
    if backend == "postgresql" and not DATABASE_URL.startswith("postgresql"):
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL tests: PUBLICMESH_TEST_DATABASE_URL is not set")
        pytest.skip('PostgreSQL tests need PUBLICMESH_TEST_DATABASE_URL (eval "$(scripts/postgres.sh)")')
    return backend


def require_nats() -> str:
    """The test NATS server's URL; without one the test is skipped (failed under CI)."""
    if not NATS_URL.startswith("nats://"):
        if os.environ.get("CI"):
            pytest.fail("CI must run the JetStream tests: PUBLICMESH_TEST_NATS_URL is not set")
        pytest.skip('JetStream tests need PUBLICMESH_TEST_NATS_URL (eval "$(scripts/nats.sh)")')
    return NATS_URL


def backend_settings(backend: str, folder: Path) -> Settings:
    """Settings whose stores are on the backend: SQLite files in ``folder``, or the test cluster's databases."""
    require(backend)
    return Settings(data_dir=folder, database_url=DATABASE_URL if backend == "postgresql" else "")


def store_name(settings: Settings, name: str) -> str:
    """The name of a store of one test: ``name`` in its own folder on SQLite; on PostgreSQL, whose databases all
    tests share, ``name`` and a random tag."""
    return f"{name}-test-{uuid.uuid4().hex[:12]}" if settings.database_url else name


def drop(settings: Settings, engine: Engine, name: str) -> None:
    """Closes the engine, and drops a PostgreSQL store (a SQLite file goes with its folder)."""
    engine.dispose()
    if settings.database_url:
        drop_store(name, settings)


@contextmanager
def temporary_store(settings: Settings, name: str) -> Iterator[Engine]:
    """A new, empty store (no tables) of one test; dropped afterwards on PostgreSQL."""
    name = store_name(settings, name)
    engine = engine_for(name, settings)
    try:
        yield engine
    finally:
        drop(settings, engine, name)
