"""Fixtures every test may use."""

from publicmesh.runtime.catalog import AGENCIES
from publicmesh.services.definition import use_catalog

use_catalog(AGENCIES)  # as every part's bootstrap does
