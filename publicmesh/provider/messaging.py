"""Outbox and inbox of an agency node: changes leave in the same transaction, deliveries land once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError


def messaging_tables(metadata: MetaData) -> tuple[Table, Table]:
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("member", String(64), nullable=False),
        Column("event_type", String(32), nullable=False),
        Column("subject", String(32), nullable=False),
        Column("data", Text, nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("idempotency_key", String(128), primary_key=True),
        Column("member", String(64), nullable=False),
        Column("source", String(64), nullable=False),
        Column("event_type", String(32), nullable=False),
        Column("subject", String(32), nullable=False),
        Column("data", Text, nullable=False),
        Column("occurred_at", String(40), nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    return outbox, inbox


def emit(conn: Connection, outbox: Table, member: str, event_type: str, subject: str, data: dict) -> None:
    """Record a change for the hub to route; call inside the transaction that makes the change."""
    conn.execute(
        insert(outbox).values(
            member=member,
            event_type=event_type,
            subject=subject,
            data=orjson.dumps(data).decode(),
            occurred_at=dt.datetime.now(dt.UTC),
        )
    )


def emit_many(
    conn: Connection, outbox: Table, member: str, event_type: str, changes: Sequence[tuple[str, dict]]
) -> None:
    """Many changes of one kind, as (subject, data), recorded in one statement (see emit)."""
    if not changes:
        return
    now = dt.datetime.now(dt.UTC)
    conn.execute(
        insert(outbox),
        [
            {
                "member": member,
                "event_type": event_type,
                "subject": subject,
                "data": orjson.dumps(data).decode(),
                "occurred_at": now,
            }
            for subject, data in changes
        ],
    )


def read_outbox(conn: Connection, outbox: Table, after: int, limit: int) -> list[dict]:
    rows = conn.execute(select(outbox).where(outbox.c.id > after).order_by(outbox.c.id).limit(limit)).mappings()
    return [
        {
            "id": r["id"],
            "member": r["member"],
            "type": r["event_type"],
            "subject": r["subject"],
            "data": orjson.loads(r["data"]),
            "occurred_at": _iso(r["occurred_at"]),
        }
        for r in rows
    ]


def outbox_depth(engine: Engine, outbox: Table, after: int) -> int:
    """How many events wait in the outbox after ``after`` (the hub's last cursor)."""
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(outbox).where(outbox.c.id > after)).scalar_one()


def _iso(value) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()


def accept(conn: Connection, inbox: Table, events: Sequence[dict]) -> list[dict]:
    """Store deliveries not seen before; returns the new ones (to apply in the same transaction)."""
    fresh = []
    for event in events:
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(inbox).values(
                        idempotency_key=event["idempotency_key"],
                        member=event["member"],
                        source=event["source"],
                        event_type=event["type"],
                        subject=event["subject"],
                        data=orjson.dumps(event["data"]).decode(),
                        occurred_at=event["occurred_at"],
                    )
                )
            fresh.append(event)
        except IntegrityError:
            continue  # a redelivery: at-least-once from the hub, exactly-once here
    return fresh
