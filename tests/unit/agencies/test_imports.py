"""An agency part loads what it serves: the catalog, the topology and the node do not load Polars (about 40 MB
per process) or the services part's code; an agency loads Polars when it first reads in bulk."""

import subprocess
import sys

PROBE = """
import sys
from publicmesh.runtime.catalog import AGENCIES
from publicmesh.provider.bootstrap import bootstrap
from publicmesh.runtime.topology import parts
from publicmesh.settings import Settings
parts(Settings())
assert AGENCIES["services"].writers["application"] is not None
loaded = sorted(m for m in sys.modules if m == "polars" or m.startswith(("publicmesh.services.applications",
                                                                          "publicmesh.population.generator")))
print(",".join(loaded))
"""


def test_an_agency_part_does_not_load_polars_or_the_services_code_until_it_needs_them():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_polars_is_loaded_by_the_first_bulk_read():
    probe = PROBE.replace(
        'print(",".join(loaded))',
        """
import pyarrow as pa
from publicmesh.provider.node import asked_positions
asked_positions(pa.chunked_array([["a"]]), ["a"])
print("polars" in sys.modules)""",
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
