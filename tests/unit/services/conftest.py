"""The services store: the root conftest's engine on each backend, named as the services part names it."""

from __future__ import annotations

import pytest


@pytest.fixture
def store_name():
    return "services"
