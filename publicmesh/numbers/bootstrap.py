"""The number service wired in one place: its master key, its store, the keys it trusts and its own."""

from __future__ import annotations

from starlette.applications import Starlette

from publicmesh.design.observability import observe, present, store_answers
from publicmesh.design.openapi import openapi_routes
from publicmesh.numbers.app import NumbersApi, metadata, openapi
from publicmesh.numbers.keys import load_or_create_master
from publicmesh.numbers.pseudonyms import PseudonymService
from publicmesh.protocol.ca import read_private_key
from publicmesh.protocol.members import NUMBERS
from publicmesh.protocol.signatures import Signer, Verifier
from publicmesh.protocol.trust import TrustStore
from publicmesh.settings import Settings
from publicmesh.storage import engine_for


def bootstrap(settings: Settings) -> Starlette:
    """The number service's ASGI app; its OpenAPI document at /openapi.json, the page at /docs."""
    engine = engine_for("numbers", settings)
    metadata.create_all(engine)
    trust = TrustStore.from_keys_dir(settings.keys_dir)
    api = NumbersApi(
        PseudonymService(load_or_create_master(settings.keys_dir)),
        engine,
        trust,
        Verifier(trust.key, settings.signature_max_age_s),
        Signer(str(NUMBERS), read_private_key(settings.keys_dir / "members" / f"{NUMBERS.file_stem}.key")),
    )
    app = Starlette(routes=[*api.routes(), *openapi_routes(openapi)])
    observe(app, "numbers", [("store", store_answers(engine)), ("keys", present(api.signer))])
    return app
