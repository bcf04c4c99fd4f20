"""A services store on each configured backend: SQLite under tmp_path, and a throwaway PostgreSQL database when
PUBLICMESH_TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
import uuid

import pytest

from publicmesh.settings import Settings
from publicmesh.storage import drop_store, engine_for

DATABASE_URL = os.environ.get("PUBLICMESH_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if DATABASE_URL.startswith("postgresql") else [])


@pytest.fixture(params=BACKENDS)
def any_engine(request, tmp_path):
    if request.param == "postgresql":
        settings = Settings(data_dir=tmp_path, database_url=DATABASE_URL)
        name = f"services-test-{uuid.uuid4().hex[:12]}"
        engine = engine_for(name, settings)
        yield engine
        engine.dispose()
        drop_store(name, settings)
    else:
        engine = engine_for("services", Settings(data_dir=tmp_path, database_url=""))
        yield engine
        engine.dispose()
