"""Which municipality issued a person's card (交付市区町村), so the portal can address that city's systems."""

from __future__ import annotations

import secrets

from sqlalchemy import Column, Engine, MetaData, String, Table, select

from publicmesh.storage import upsert

metadata = MetaData()
card_holders = Table(
    "portal_card_holders",
    metadata,
    Column("person_ref", String(22), primary_key=True),
    Column("municipality", String(6), nullable=False),
    Column("display_name", String(80), nullable=False),
    # Shown to the person so a principal can name them as proxy (代理人) without any identifier of theirs.
    Column("proxy_code", String(12), nullable=False, unique=True),
)


class ResidentDirectory:
    def __init__(self, engine: Engine):
        self.engine = engine
        metadata.create_all(engine)

    def record(self, person_ref: str, municipality: str, display_name: str) -> None:
        values = dict(person_ref=person_ref, municipality=municipality, display_name=display_name)
        code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(10))
        with self.engine.begin() as conn:  # a holder known already keeps their proxy code
            upsert(conn, card_holders, {**values, "proxy_code": code}, ["person_ref"], ["municipality", "display_name"])

    def get(self, person_ref: str):
        """(municipality, display_name, proxy_code) of a card holder, or None."""
        with self.engine.connect() as conn:
            return conn.execute(select(card_holders).where(card_holders.c.person_ref == person_ref)).first()

    def by_proxy_code(self, code: str):
        with self.engine.connect() as conn:
            return conn.execute(select(card_holders).where(card_holders.c.proxy_code == code.strip().upper())).first()
