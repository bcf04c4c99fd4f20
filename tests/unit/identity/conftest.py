"""Fixtures: an identity store on each backend (the root conftest's engine), its authority and card store."""

from __future__ import annotations

import base64
import datetime as dt
import secrets

import pytest

from publicmesh.identity import BasicInformation, CardStore, JpkiAuthority, issue_card


@pytest.fixture
def store_name():
    return "identity"


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
