"""One place that wires the identity service's parts to a store and a keys folder."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from publicmesh.identity.card import CardStore
from publicmesh.identity.login import ResidentLogin
from publicmesh.identity.mandates import Mandates
from publicmesh.identity.pki import JpkiAuthority
from publicmesh.identity.wallet import Wallets
from publicmesh.settings import Settings, get_settings
from publicmesh.storage import engine_for

STORE = "identity"


@dataclass(frozen=True)
class Identity:
    engine: Engine
    authority: JpkiAuthority
    cards: CardStore
    login: ResidentLogin
    wallets: Wallets
    mandates: Mandates


def open_identity(settings: Settings | None = None, engine: Engine | None = None) -> Identity:
    """The identity service on the ``identity`` store and ``settings.keys_dir``; creates what is missing."""
    settings = settings or get_settings()
    engine = engine or engine_for(STORE, settings)
    authority = JpkiAuthority.load_or_create(settings.keys_dir, engine)
    return Identity(
        engine=engine,
        authority=authority,
        cards=CardStore.open(engine, settings.keys_dir),
        login=ResidentLogin(engine, authority),
        wallets=Wallets(engine, authority),
        mandates=Mandates(engine),
    )
