"""Tables of the notices store (SQLAlchemy Core); portable between SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Select,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
    text,
)

from publicmesh.notices.model import TEXT_FIELDS, Notice, from_text, text_id
from publicmesh.settings import Settings
from publicmesh.storage import engine_for, lock_for_schema_change, schema_once

STORE = "notices"
KEY = "ux_notices_person_key"
KEY_COLUMNS = ["person_ref", "sender", "idempotency_key"]
metadata = MetaData()

# What a notice says, once per distinct text (texts.py): a service's notices to a whole municipality share a few.
notice_texts = Table(
    "notice_texts",
    metadata,
    Column("id", Text, primary_key=True),  # the texts' digest (model.text_id)
    Column("title_ja", Text, nullable=False),
    Column("title_en", Text, nullable=False),
    Column("body_ja", Text, nullable=False),
    Column("body_en", Text, nullable=False),
)

notices = Table(
    "notices",
    metadata,
    # Unguessable, and always looked up with its person: the person's index finds it, it needs none of its own.
    Column("id", Text, nullable=False),
    Column("person_ref", Text, nullable=False),
    Column("sender", Text, nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("category", Text, nullable=False),
    # No foreign key: the texts are stored before their notices, and a check per notice would cost on PostgreSQL.
    Column("text_id", Text, nullable=False),
    Column("links", Text, nullable=False),  # JSON object
    Column("delivery", Text, nullable=False),  # JSON object: channel → delivered/queued/sent/no-contact/failed
    Column("pending", Integer, nullable=False),  # 1 while some channel is queued: the dispatcher's work list
    Column("created_at", Text, nullable=False),
    Column("read_at", Text),
    # One notice per key and sender in each person's inbox (two senders choosing the same key must not swallow
    # each other's notices). Led by the person, it also finds a person's notices: their inbox pages, unread count
    # and each one by id (a person has a few dozen). It is the only index of a random key: each costs a page write
    # per notice when a service notifies a whole municipality, and the notices of one arrive in this order.
    UniqueConstraint("person_ref", "sender", "idempotency_key", name=KEY),
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


def _upgrade(conn: Connection) -> None:
    """A store an earlier version made, its notices moved to this layout in one transaction (old ids and keys
    kept): one whose notices held their own texts (stored once now), or whose keys were one per sender across all
    inboxes (each person's own now, and a second index found a person's notices)."""
    if not _outdated(conn):
        return
    lock_for_schema_change(conn, "notices")
    if not _outdated(conn):  # another process moved them meanwhile
        return
    holds_texts = _holds_texts(conn)
    for index in (
        "ix_notices_inbox",
        "ix_notices_unread",
        "ix_notices_pending",
        "ix_notices_queued",
        "ix_notices_person",
    ):
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index}")
    if conn.dialect.name == "postgresql":  # a dialect's own SQL: SQLite's constraints go with the renamed table
        conn.exec_driver_sql("ALTER TABLE notices DROP CONSTRAINT IF EXISTS ux_notices_idempotency")
    conn.exec_driver_sql("ALTER TABLE notices RENAME TO notices_before")
    notices.create(conn)
    kept = [c.name for c in notices.columns if c.name != "text_id"]
    if holds_texts:
        texts = conn.exec_driver_sql(f"SELECT DISTINCT {', '.join(TEXT_FIELDS)} FROM notices_before").all()
        if texts:
            conn.execute(notice_texts.insert(), [{"id": text_id(t), **dict(zip(TEXT_FIELDS, t))} for t in texts])
        same_texts = " AND ".join(f"t.{name} = o.{name}" for name in TEXT_FIELDS)
        conn.exec_driver_sql(
            f"INSERT INTO notices ({', '.join(kept)}, text_id) SELECT {', '.join(f'o.{c}' for c in kept)}, t.id "
            f"FROM notices_before o JOIN notice_texts t ON {same_texts} ORDER BY o.person_ref"
        )
    else:
        names = ", ".join([*kept, "text_id"])
        conn.exec_driver_sql(f"INSERT INTO notices ({names}) SELECT {names} FROM notices_before ORDER BY person_ref")
    conn.exec_driver_sql("DROP TABLE notices_before")


def _outdated(conn: Connection) -> bool:
    keys = [u["column_names"] for u in inspect(conn).get_unique_constraints("notices")]
    return _holds_texts(conn) or KEY_COLUMNS not in keys


def _holds_texts(conn: Connection) -> bool:
    return "title_ja" in {column["name"] for column in inspect(conn).get_columns("notices")}


ensure_schema = schema_once(metadata, _upgrade)


def open_store(settings: Settings | None = None) -> Engine:
    """The notices store's engine, with its tables."""
    return ensure_schema(engine_for(STORE, settings))


def with_texts() -> Select:
    """The notices with their texts: what a Notice is made of."""
    return select(notices, *(notice_texts.c[name] for name in TEXT_FIELDS)).join(
        notice_texts, notice_texts.c.id == notices.c.text_id
    )


def row_notice(row: Mapping[str, object]) -> Notice:
    """A Notice of a row of with_texts()."""
    return Notice(
        id=row["id"],
        person_ref=row["person_ref"],
        sender=row["sender"],
        category=row["category"],
        title_ja=row["title_ja"],
        title_en=row["title_en"],
        body_ja=row["body_ja"],
        body_en=row["body_en"],
        links=json.loads(row["links"]),
        idempotency_key=row["idempotency_key"],
        delivery=json.loads(row["delivery"]),
        created_at=from_text(row["created_at"]),
        read_at=from_text(row["read_at"]),
    )
