"""`publicmesh audit verify` where no hub ever ran: a clear message and exit 2, not a traceback."""

from __future__ import annotations

from typer.testing import CliRunner

from publicmesh.cli import app
from publicmesh.settings import get_settings


def test_verify_before_the_hub_ever_ran_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PUBLICMESH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PUBLICMESH_BASE_PORT", "1")  # no witness answers there
    get_settings.cache_clear()  # read again from the environment above
    try:
        result = CliRunner().invoke(app, ["audit", "verify"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert "No audit log to verify" in result.output and "Traceback" not in result.output
