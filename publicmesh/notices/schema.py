"""Tables of the notices store (SQLAlchemy Core); portable between SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import (
    Column, Engine, Index, Integer, LargeBinary, MetaData, PrimaryKeyConstraint, Table, Text, UniqueConstraint, text,
)

from publicmesh.notices.model import Notice, from_text
from publicmesh.settings import Settings
from publicmesh.storage import engine_for, schema_once

STORE = "notices"
metadata = MetaData()

notices = Table(
    "notices",
    metadata,
    Column("id", Text, primary_key=True),
    Column("person_ref", Text, nullable=False),
    Column("sender", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("title_ja", Text, nullable=False),
    Column("title_en", Text, nullable=False),
    Column("body_ja", Text, nullable=False),
    Column("body_en", Text, nullable=False),
    Column("links", Text, nullable=False),  # JSON object
    Column("idempotency_key", Text, nullable=False),
    Column("delivery", Text, nullable=False),  # JSON object: channel → delivered/queued/sent/no-contact/failed
    Column("pending", Integer, nullable=False),  # 1 while some channel is queued: the dispatcher's work list
    Column("created_at", Text, nullable=False),
    Column("read_at", Text),
    # Keys are the sender's: two senders choosing the same key must not swallow each other's notices.
    UniqueConstraint("sender", "idempotency_key", name="ux_notices_idempotency"),
    # A person's notices, newest first; their unread count reads the same few rows. Kept to what the inbox needs:
    # each index of a random key costs a page write per notice when a service notifies a whole municipality.
    Index("ix_notices_inbox", "person_ref", "created_at"),
    # The dispatcher's work list: only notices still queued for email or SMS (most are for the inbox alone).
    Index("ix_notices_queued", "pending", sqlite_where=text("pending = 1"), postgresql_where=text("pending = 1")),
)

contacts = Table(
    "contacts",
    metadata,
    Column("person_ref", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("verified_at", Text, nullable=False),
    PrimaryKeyConstraint("person_ref", "kind"),  # one email and one phone each: a new one replaces the old
)

contact_codes = Table(
    "contact_codes",
    metadata,
    Column("id", Text, primary_key=True),
    Column("person_ref", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("salt", LargeBinary, nullable=False),
    Column("code_hash", LargeBinary, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("expires_at", Text, nullable=False),
    Column("confirmed_at", Text),
    Index("ix_contact_codes_person", "person_ref", "created_at"),
)



def _upgrade(conn) -> None:
    """Stores made before the indexes were trimmed: drop the two that every notice paid for."""
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_notices_unread")
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_notices_pending")
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_notices_queued ON notices (pending) WHERE pending = 1")


ensure_schema = schema_once(metadata, _upgrade)


def open_store(settings: Settings | None = None) -> Engine:
    """The notices store's engine, with its tables."""
    return ensure_schema(engine_for(STORE, settings))


def row_notice(row: Mapping[str, object]) -> Notice:
    return Notice(
        id=row["id"], person_ref=row["person_ref"], sender=row["sender"], category=row["category"],
        title_ja=row["title_ja"], title_en=row["title_en"], body_ja=row["body_ja"], body_en=row["body_en"],
        links=json.loads(row["links"]), idempotency_key=row["idempotency_key"],
        delivery=json.loads(row["delivery"]), created_at=from_text(row["created_at"]),
        read_at=from_text(row["read_at"]),
    )
