"""What the portal needs of identity, notices, consent and accounts — always for one session's person."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from publicmesh import notices
from publicmesh.identity import Identity
from publicmesh.notices.channels import Channel
from publicmesh.portal.proxies import ProxyLog
from publicmesh.portal.residents import ResidentDirectory
from publicmesh.portal.sessions import Session


class People:
    """The identity service and the notices, consent and accounts stores (engines), with the resident directory
    and the proxy log kept in the identity store."""

    def __init__(self, identity: Identity, *, notices: Engine, consents: Engine, accounts: Engine, channel: Channel):
        self.identity = identity
        self.directory = ResidentDirectory(identity.engine)
        self.notices = notices
        self.consents = consents
        self.accounts = accounts
        self.channel = channel
        self.proxy_log = ProxyLog(identity.engine)

    def name_of(self, person_ref: str) -> str:
        holder = self.directory.get(person_ref)
        return holder.display_name if holder else "—"

    def unread(self, session: Session) -> int:
        return notices.unread_count(self.notices, session.subject_ref)

    def mandate_allows(self, session: Session, scope: str) -> bool:
        # A statutory mandate was established from the registry when the parent chose the child (and is
        # re-established at every login); granted ones are checked against the mandate store every time.
        statutory = (session.mandate_id or "").startswith("statutory:")
        return (
            self.identity.mandates.authorize(
                session.actor_ref, session.subject_ref, scope, is_parent_of_minor=statutory
            )
            is not None
        )

    def mandate_in_force(self, session: Session) -> bool:
        """Whether the mandate the session acts under still holds for some scope (statutory: see mandate_allows)."""
        if (session.mandate_id or "").startswith("statutory:"):
            return True
        return any(
            m.id == session.mandate_id and m.principal_ref == session.acting_for
            for m in self.identity.mandates.mandates_held(session.actor_ref)
        )

    def mandates_held(self, session: Session) -> list[dict]:
        return [
            {"id": m.id, "principal_name": self.name_of(m.principal_ref), "scopes": sorted(m.scopes)}
            for m in self.identity.mandates.mandates_held(session.actor_ref)
        ]

    def mandates_given(self, person_ref: str) -> list[dict]:
        return [
            {
                "id": m.id,
                "proxy_name": self.name_of(m.proxy_ref),
                "scopes": sorted(m.scopes),
                "valid_until": m.valid_until.date().isoformat(),
            }
            for m in self.identity.mandates.mandates_to_show(person_ref)
        ]

    def grant(self, principal_ref: str, proxy_code: str, scopes: set[str], days: int):
        proxy = self.directory.by_proxy_code(proxy_code)
        if proxy is None or proxy.person_ref == principal_ref:
            raise LookupError("proxy code")
        now = dt.datetime.now(dt.UTC)
        return self.identity.mandates.grant(principal_ref, proxy.person_ref, scopes, now, now + dt.timedelta(days=days))
