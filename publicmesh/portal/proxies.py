"""Acting for someone else: granted mandates, statutory mandates for minor children, and the action log.

Every page a proxy opens for a principal is recorded as "proxy X for principal Y" and shown to the principal.
The services part asks, through the hub, who may sign a person's applications (``signers_of``): the person's own
signing certificates in force, and the mandates to apply in force with the signing certificates their proxies sign
with (``mandates_to_apply``); it checks every signed application, resubmission and withdrawal against them.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, insert, select

from publicmesh.identity import SIGNING
from publicmesh.identity.mandates import GRANTED, SCOPES, STATUTORY, reference

metadata = MetaData()
proxy_actions = Table(
    "portal_proxy_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("principal_ref", String(22), nullable=False, index=True),
    Column("proxy_ref", String(22), nullable=False),
    Column("mandate", String(80), nullable=False),
    Column("action", String(80), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
ADULT_AGE = 18


class ProxyLog:
    def __init__(self, engine: Engine):
        self.engine = engine
        metadata.create_all(engine)

    def record(self, principal_ref: str, proxy_ref: str, mandate: str, action: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(proxy_actions).values(
                    principal_ref=principal_ref,
                    proxy_ref=proxy_ref,
                    mandate=mandate,
                    action=action[:80],
                    at=dt.datetime.now(dt.UTC),
                )
            )

    def for_principal(self, principal_ref: str, limit: int = 20) -> list[dict]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(proxy_actions)
                    .where(proxy_actions.c.principal_ref == principal_ref)
                    .order_by(proxy_actions.c.id.desc())
                    .limit(limit)
                )
                .mappings()
                .all()
            )
        return [dict(r) for r in rows]


def signers_of(identity, sessions, person_ref: str, attributes=None) -> dict:
    """The answer to the services part's ``signers`` query: ``signing_certificates`` (the person's own, in force:
    a revoked one, after a move, signs for nobody) and ``mandates`` (mandates_to_apply), those asked for."""
    answers = {
        "signing_certificates": lambda: [c.serial for c in identity.authority.certificates_of(person_ref, SIGNING)],
        "mandates": lambda: mandates_to_apply(identity, sessions, person_ref),
    }
    return {name: answers[name]() for name in attributes or list(answers) if name in answers}


def mandates_to_apply(identity, sessions, principal_ref: str, at: dt.datetime | None = None) -> list[dict]:
    """The principal's mandates in force that cover applications, each named as a signed application names it
    (mandates.reference) and with its proxy's signing certificates in force (serials, lower-case hex)."""
    at = at or dt.datetime.now(dt.UTC)
    found = [
        (m.id, GRANTED, m.proxy_ref, m.scopes, m.valid_from, m.valid_until)
        for m in identity.mandates.active_mandates(principal_ref, at)
        if m.permits("applications", at)
    ]
    found += [
        (mandate_id, STATUTORY, parent, SCOPES, at, until)
        for parent, mandate_id, until in sessions.statutory_proxies(principal_ref)
    ]
    return [
        {
            "mandate": reference(mandate_id),
            "kind": kind,
            "scopes": sorted(scopes),
            "valid_from": valid_from.isoformat(),
            "valid_until": valid_until.isoformat(),
            "proxy_certificates": [c.serial for c in identity.authority.certificates_of(proxy, SIGNING)],
        }
        for mandate_id, kind, proxy, scopes, valid_from, valid_until in found
    ]


def minor_children(household: dict, actor_ref: str, today: dt.date | None = None) -> list[dict]:
    """Household members under 18 for whom the actor, as head or spouse, is the statutory proxy (親権者)."""
    data = household.get("data") or {}
    if household.get("state") != "ok" or data.get("relation") not in ("head", "spouse"):
        return []
    today = today or dt.date.today()
    children = []
    for member in data.get("members", []):
        born = dt.date.fromisoformat(member["birth_date"])
        age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
        if member["relation"] == "child" and age < ADULT_AGE and member["subject"] != actor_ref:
            children.append({"subject": member["subject"], "birth_date": member["birth_date"], "age": age})
    return children
