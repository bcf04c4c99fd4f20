"""Fixtures every test may use: the agency catalog, and one store on each backend (see backends.py)."""

from __future__ import annotations

import pytest
from backends import BACKENDS, backend_settings, temporary_store

from publicmesh.runtime.catalog import AGENCIES
from publicmesh.services.definition import use_catalog

use_catalog(AGENCIES)  # as every part's bootstrap does


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Each backend in turn: "sqlite", then "postgresql" (skipped without a test cluster, failed under CI)."""
    return request.param


@pytest.fixture
def settings(backend, tmp_path):
    """Settings of the backend, their folder (keys, SQLite files) under tmp_path."""
    return backend_settings(backend, tmp_path)


@pytest.fixture
def store_name() -> str:
    """The name of the test's store (a module may name it as the part it tests does)."""
    return "test"


@pytest.fixture
def engine(settings, store_name):
    """A new, empty store on the backend: a SQLite file under tmp_path, or a PostgreSQL database of its own,
    dropped afterwards."""
    with temporary_store(settings, store_name) as engine:
        yield engine
