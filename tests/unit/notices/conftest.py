"""A fresh notices store for each test, on each backend (see backends.py)."""

from __future__ import annotations

import pytest
from backends import temporary_store

from publicmesh.notices import ensure_schema


@pytest.fixture
def empty_engine(settings):
    """A new, empty store with no tables: a SQLite file, or a throwaway PostgreSQL database dropped afterwards."""
    with temporary_store(settings, "notices") as engine:
        yield engine


@pytest.fixture
def engine(empty_engine):
    """A fresh notices store with its tables."""
    return ensure_schema(empty_engine)
