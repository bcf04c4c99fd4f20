"""Fixtures: an identity store (SQLite under tmp_path, or PostgreSQL when PUBLICMESH_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
import uuid

import pytest

from publicmesh.identity import BasicInformation, CardStore, JpkiAuthority, issue_card
from publicmesh.settings import Settings
from publicmesh.storage import drop_store, engine_for

DATABASE_URL = os.environ.get("PUBLICMESH_TEST_DATABASE_URL", "")


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=tmp_path, database_url=DATABASE_URL if DATABASE_URL.startswith("postgresql") else "")


@pytest.fixture
def engine(settings):
    if settings.database_url:
        store = f"identity-test-{uuid.uuid4().hex[:12]}"
        engine = engine_for(store, settings)
        yield engine
        engine.dispose()
        drop_store(store, settings)
    else:
        engine = engine_for("identity", settings)
        yield engine
        engine.dispose()


@pytest.fixture
def authority(settings, engine):
    return JpkiAuthority.load_or_create(settings.keys_dir, engine)


@pytest.fixture
def cards(settings, engine):
    return CardStore.open(engine, settings.keys_dir)


def _new_ref() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


@pytest.fixture
def new_ref():
    """Make a fresh portal pseudonym (22 characters)."""
    return _new_ref


@pytest.fixture
def hanako():
    return BasicInformation("北見　花子", "北海道北見市青葉町1番1号", dt.date(1988, 4, 2), 2)


@pytest.fixture
def card(authority, cards, hanako):
    return issue_card(authority, cards, _new_ref(), hanako, "1234", "ABC123")
