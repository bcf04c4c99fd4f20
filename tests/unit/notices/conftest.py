"""A fresh notices store for each test, on SQLite and, when available, PostgreSQL."""

from __future__ import annotations

import os
import uuid

import pytest

from publicmesh.notices import ensure_schema
from publicmesh.settings import Settings
from publicmesh.storage import drop_store, engine_for

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("PUBLICMESH_TEST_DATABASE_URL") else [])


@pytest.fixture(params=BACKENDS)
def empty_engine(request, tmp_path):
    """A new, empty store with no tables: a SQLite file, or a throwaway PostgreSQL database dropped afterwards."""
    if request.param == "postgresql":
        settings = Settings(data_dir=tmp_path, database_url=os.environ["PUBLICMESH_TEST_DATABASE_URL"])
        store = f"notices-test-{uuid.uuid4().hex[:12]}"
    else:
        settings, store = Settings(data_dir=tmp_path, database_url=""), "notices"
    engine = engine_for(store, settings)
    yield engine
    engine.dispose()
    if request.param == "postgresql":
        drop_store(store, settings)


@pytest.fixture
def engine(empty_engine):
    """A fresh notices store with its tables."""
    return ensure_schema(empty_engine)
