"""Server-side portal sessions: a random id in an HttpOnly cookie; who logged in and for whom they act."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, delete, insert, select, update

metadata = MetaData()
sessions = Table(
    "portal_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("actor_ref", String(22), nullable=False),  # the person who logged in (portal pseudonym)
    Column("actor_name", String(80), nullable=False),
    Column("municipality", String(6), nullable=False),
    Column("acting_for", String(22)),  # the principal, while acting under a mandate
    Column("acting_for_name", String(80)),
    Column("acting_for_municipality", String(6)),
    Column("mandate_id", String(64)),
    Column("csrf", String(64), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
LIFETIME = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class Session:
    id: str
    actor_ref: str
    actor_name: str
    municipality: str
    acting_for: str | None
    acting_for_name: str | None
    acting_for_municipality: str | None
    mandate_id: str | None
    csrf: str

    @property
    def subject_ref(self) -> str:
        """Whose data the pages show: the principal while acting for one, else the person."""
        return self.acting_for or self.actor_ref

    @property
    def subject_municipality(self) -> str:
        return self.acting_for_municipality or self.municipality


class SessionStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        metadata.create_all(engine)

    def create(self, actor_ref: str, actor_name: str, municipality: str) -> Session:
        values = dict(
            id=secrets.token_urlsafe(32),
            actor_ref=actor_ref,
            actor_name=actor_name,
            municipality=municipality,
            csrf=secrets.token_urlsafe(24),
            expires_at=_now() + LIFETIME,
        )
        with self.engine.begin() as conn:
            conn.execute(insert(sessions).values(**values))
        return self.get(values["id"])

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(sessions).where(sessions.c.id == session_id)).mappings().first()
        if row is None or _aware(row["expires_at"]) < _now():
            return None
        return Session(**{k: row[k] for k in Session.__dataclass_fields__})

    def act_for(
        self,
        session: Session,
        principal: str | None,
        name: str | None,
        municipality: str | None,
        mandate_id: str | None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(sessions)
                .where(sessions.c.id == session.id)
                .values(
                    acting_for=principal,
                    acting_for_name=name,
                    acting_for_municipality=municipality,
                    mandate_id=mandate_id,
                )
            )

    def statutory_proxies(self, principal_ref: str) -> list[tuple[str, str, dt.datetime]]:
        """(parent, mandate id, until) of live sessions acting for ``principal_ref`` under a statutory mandate: the
        portal established it from the registry when the parent chose the child (see account_pages.act_for)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(sessions.c.actor_ref, sessions.c.mandate_id, sessions.c.expires_at).where(
                    sessions.c.acting_for == principal_ref, sessions.c.mandate_id.like("statutory:%")
                )
            ).all()
        return [(r.actor_ref, r.mandate_id, _aware(r.expires_at)) for r in rows if _aware(r.expires_at) > _now()]

    def touch(self, session: Session) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(sessions).where(sessions.c.id == session.id).values(expires_at=_now() + LIFETIME))

    def end(self, session_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.id == session_id))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
