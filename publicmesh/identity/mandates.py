"""Proxies (代理人): mandates a resident grants for chosen scopes and a period, and statutory proxies of minors."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, select, update

from publicmesh.identity import store

SCOPES = frozenset({"self-information", "applications", "notices", "settings"})
GRANTED, STATUTORY, SELF = "granted", "statutory", "self"
_FOREVER = dt.datetime.max.replace(tzinfo=dt.UTC)
_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Mandate:
    """Authority for ``proxy_ref`` to act for ``principal_ref`` within ``scopes`` between two instants."""

    id: str
    principal_ref: str
    proxy_ref: str
    scopes: frozenset[str]
    valid_from: dt.datetime
    valid_until: dt.datetime
    kind: str = GRANTED  # granted | statutory (親権者, not stored) | self (acting for oneself, not stored)
    revoked_at: dt.datetime | None = None

    def permits(self, scope: str, at: dt.datetime | None = None) -> bool:
        at = at or store.utc_now()
        return self.revoked_at is None and self.valid_from <= at < self.valid_until and scope in self.scopes


def reference(mandate_id: str) -> str:
    """What a mandate is called outside the portal (in a signed application, to the services part): a granted
    mandate by its id; a statutory one, whose id holds the parent's and the child's portal pseudonyms, by a digest."""
    if mandate_id.startswith(f"{STATUTORY}:"):
        return f"{STATUTORY}-" + hashlib.sha256(mandate_id.encode()).hexdigest()[:32]
    return mandate_id


def check_scopes(scopes: set[str] | frozenset[str]) -> frozenset[str]:
    scopes = frozenset(scopes)
    if not scopes or not scopes <= SCOPES:
        raise ValueError(f"scopes are a non-empty subset of {sorted(SCOPES)}, got {sorted(scopes)}")
    return scopes


def self_mandate(person_ref: str) -> Mandate:
    """A person acting for themself: every scope, always."""
    return Mandate(SELF, person_ref, person_ref, SCOPES, _EPOCH, _FOREVER, kind=SELF)


def check_statutory(parent_ref: str, child_ref: str, is_parent_of_minor: bool) -> Mandate | None:
    """The statutory mandate of a parent for a minor child, which exists without any grant.

    ``is_parent_of_minor`` is the portal's finding from the resident registry (same household, child
    under 18); this module holds no registry data and cannot establish it itself.
    """
    if not is_parent_of_minor or parent_ref == child_ref:
        return None
    return Mandate(
        f"{STATUTORY}:{parent_ref}:{child_ref}", child_ref, parent_ref, SCOPES, _EPOCH, _FOREVER, kind=STATUTORY
    )


class Mandates:
    """Granted mandates in the identity store."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def grant(
        self,
        principal_ref: str,
        proxy_ref: str,
        scopes: set[str] | frozenset[str],
        valid_from: dt.datetime,
        valid_until: dt.datetime,
    ) -> Mandate:
        store.check_person_ref(principal_ref)
        store.check_person_ref(proxy_ref)
        if principal_ref == proxy_ref:
            raise ValueError("a person cannot be their own proxy")
        if valid_from.tzinfo is None or valid_until.tzinfo is None:
            raise ValueError("validity instants must be timezone-aware")
        if valid_until <= valid_from:
            raise ValueError("a mandate must end after it starts")
        mandate = Mandate(
            secrets.token_hex(16),
            principal_ref,
            proxy_ref,
            check_scopes(scopes),
            valid_from.astimezone(dt.UTC),
            valid_until.astimezone(dt.UTC),
        )
        with self.engine.begin() as conn:
            conn.execute(
                store.mandates.insert().values(
                    mandate_id=mandate.id,
                    principal_ref=principal_ref,
                    proxy_ref=proxy_ref,
                    scopes=",".join(sorted(mandate.scopes)),
                    valid_from=mandate.valid_from,
                    valid_until=mandate.valid_until,
                    created_at=store.utc_now(),
                )
            )
        return mandate

    def revoke(self, mandate_id: str, by_ref: str) -> Mandate:
        """Only the principal revokes a mandate (PermissionError otherwise); revoking twice is harmless."""
        table = store.mandates
        with self.engine.begin() as conn:
            row = conn.execute(select(table).where(table.c.mandate_id == mandate_id)).first()
            if row is None:
                raise LookupError(f"no mandate {mandate_id}")
            if row.principal_ref != by_ref:
                raise PermissionError("only the principal can revoke a mandate")
            conn.execute(
                update(table)
                .where(table.c.mandate_id == mandate_id, table.c.revoked_at.is_(None))
                .values(revoked_at=store.utc_now(), revoked_by=by_ref)
            )
            return _mandate(conn.execute(select(table).where(table.c.mandate_id == mandate_id)).one())

    def get(self, mandate_id: str) -> Mandate | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(store.mandates).where(store.mandates.c.mandate_id == mandate_id)).first()
        return None if row is None else _mandate(row)

    def active_mandates(self, principal_ref: str, at: dt.datetime | None = None) -> list[Mandate]:
        """Mandates the principal has granted that are in force at ``at`` (now)."""
        return self._in_force(store.mandates.c.principal_ref == principal_ref, at)

    def mandates_held(self, proxy_ref: str, at: dt.datetime | None = None) -> list[Mandate]:
        """Mandates in force at ``at`` (now) under which ``proxy_ref`` acts for others."""
        return self._in_force(store.mandates.c.proxy_ref == proxy_ref, at)

    def mandates_to_show(self, principal_ref: str, at: dt.datetime | None = None) -> list[Mandate]:
        """What the portal must show the principal: mandates in force or yet to start, never hidden by a card lock."""
        at = at or store.utc_now()
        table = store.mandates
        return self._query(
            table.c.principal_ref == principal_ref, table.c.revoked_at.is_(None), table.c.valid_until > at
        )

    def authorize(
        self,
        actor_ref: str,
        principal_ref: str,
        scope: str,
        at: dt.datetime | None = None,
        *,
        is_parent_of_minor: bool = False,
    ) -> Mandate | None:
        """The mandate under which ``actor_ref`` may act for ``principal_ref`` in ``scope`` at ``at``, or None."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        if actor_ref == principal_ref:
            return self_mandate(principal_ref)
        at = at or store.utc_now()
        for mandate in self._in_force(store.mandates.c.principal_ref == principal_ref, at):
            if mandate.proxy_ref == actor_ref and mandate.permits(scope, at):
                return mandate
        return check_statutory(actor_ref, principal_ref, is_parent_of_minor)

    def _in_force(self, condition, at: dt.datetime | None) -> list[Mandate]:
        at = at or store.utc_now()
        table = store.mandates
        return self._query(condition, table.c.revoked_at.is_(None), table.c.valid_from <= at, table.c.valid_until > at)

    def _query(self, *conditions) -> list[Mandate]:
        table = store.mandates
        with self.engine.connect() as conn:
            rows = conn.execute(select(table).where(*conditions).order_by(table.c.valid_from, table.c.mandate_id))
            return [_mandate(row) for row in rows]


def _mandate(row) -> Mandate:
    return Mandate(
        row.mandate_id,
        row.principal_ref,
        row.proxy_ref,
        frozenset(row.scopes.split(",")),
        row.valid_from,
        row.valid_until,
        GRANTED,
        row.revoked_at,
    )
