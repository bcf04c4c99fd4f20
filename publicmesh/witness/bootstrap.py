"""The witness wired in one place: its own key, its own store, and the audit log it follows."""

from __future__ import annotations

from fastapi import FastAPI

from publicmesh.audit.keys import load_audit_public_key, load_or_create_witness_key
from publicmesh.audit.log import DEFAULT_LOG_ID
from publicmesh.settings import Settings
from publicmesh.storage import engine_for
from publicmesh.witness.app import create_app
from publicmesh.witness.core import WITNESS_NAME, Witness
from publicmesh.witness.store import WitnessStore


def bootstrap(settings: Settings) -> FastAPI:
    """The witness's ASGI app: it follows the mesh's audit log, whose public key it reads from the keys folder."""
    witness = Witness(
        load_or_create_witness_key(settings.keys_dir),
        WitnessStore(engine_for("witness", settings), WITNESS_NAME),
        {DEFAULT_LOG_ID: lambda: load_audit_public_key(settings.keys_dir)},
    )
    return create_app(witness)
