"""Tables of the consent store (SQLAlchemy Core); portable between SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import Column, Engine, Index, Integer, LargeBinary, MetaData, PrimaryKeyConstraint, Table, Text, text

from publicmesh.consent.model import ACTIVE, EXPIRED, Consent, PriorIntent, Purpose, from_text, to_text
from publicmesh.settings import Settings
from publicmesh.storage import engine_for, schema_once

STORE = "consent"
metadata = MetaData()
_IS_ACTIVE = text(f"status = '{ACTIVE}'")

# Every version is its own row, (id, version); rows are never rewritten except their status and end time,
# so the person's history of what they agreed to, and when, stays complete.
consents = Table(
    "consents",
    metadata,
    Column("id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("person_ref", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("datasets", Text, nullable=False),  # JSON array, sorted
    Column("purpose_id", Text, nullable=False),
    Column("purpose_ja", Text, nullable=False),
    Column("purpose_en", Text, nullable=False),
    Column("valid_from", Text, nullable=False),
    Column("valid_until", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("revoked_at", Text),
    Column("superseded_at", Text),
    PrimaryKeyConstraint("id", "version"),
    Index("ix_consents_person", "person_ref", "created_at"),
    # At most one active version per consent, even when two amendments race.
    Index("ux_consents_active", "id", unique=True, sqlite_where=_IS_ACTIVE, postgresql_where=_IS_ACTIVE),
)

prior_intents = Table(
    "prior_intents",
    metadata,
    Column("id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("person_ref", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("scope", Text, nullable=False),  # JSON array of service ids, or ["*"]
    Column("status", Text, nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("revoked_at", Text),
    Column("superseded_at", Text),
    PrimaryKeyConstraint("id", "version"),
    Index("ix_prior_intents_person", "person_ref", "created_at"),
    # One standing instruction of each kind per person: a new one supersedes the old.
    Index(
        "ux_prior_intents_active",
        "person_ref",
        "kind",
        unique=True,
        sqlite_where=_IS_ACTIVE,
        postgresql_where=_IS_ACTIVE,
    ),
)

ensure_schema = schema_once(metadata)


def open_store(settings: Settings | None = None) -> Engine:
    """The consent store's engine, with its tables."""
    return ensure_schema(engine_for(STORE, settings))


def consent_row(consent: Consent) -> dict[str, object]:
    return {
        "id": consent.id,
        "version": consent.version,
        "person_ref": consent.person_ref,
        "recipient": consent.recipient,
        "datasets": json.dumps(list(consent.datasets)),
        "purpose_id": consent.purpose.id,
        "purpose_ja": consent.purpose.description_ja,
        "purpose_en": consent.purpose.description_en,
        "valid_from": to_text(consent.valid_from),
        "valid_until": to_text(consent.valid_until),
        "status": consent.status,
        "signature": consent.signature,
        "created_at": to_text(consent.created_at),
        "revoked_at": None,
        "superseded_at": None,
    }


def row_consent(row: Mapping[str, object], now_text: str | None = None) -> Consent:
    """The consent of a row; an active one past its end reads as expired even before the sweep marks it."""
    status = row["status"]
    if status == ACTIVE and now_text is not None and row["valid_until"] <= now_text:
        status = EXPIRED
    return Consent(
        id=row["id"],
        version=row["version"],
        person_ref=row["person_ref"],
        recipient=row["recipient"],
        datasets=tuple(json.loads(row["datasets"])),
        purpose=Purpose(row["purpose_id"], row["purpose_ja"], row["purpose_en"]),
        valid_from=from_text(row["valid_from"]),
        valid_until=from_text(row["valid_until"]),
        status=status,
        signature=bytes(row["signature"]),
        created_at=from_text(row["created_at"]),
        revoked_at=from_text(row["revoked_at"]),
        superseded_at=from_text(row["superseded_at"]),
    )


def intent_row(intent: PriorIntent) -> dict[str, object]:
    return {
        "id": intent.id,
        "version": intent.version,
        "person_ref": intent.person_ref,
        "kind": intent.kind,
        "scope": json.dumps(list(intent.scope)),
        "status": intent.status,
        "signature": intent.signature,
        "created_at": to_text(intent.created_at),
        "revoked_at": None,
        "superseded_at": None,
    }


def row_intent(row: Mapping[str, object]) -> PriorIntent:
    return PriorIntent(
        id=row["id"],
        version=row["version"],
        person_ref=row["person_ref"],
        kind=row["kind"],
        scope=tuple(json.loads(row["scope"])),
        status=row["status"],
        signature=bytes(row["signature"]),
        created_at=from_text(row["created_at"]),
        revoked_at=from_text(row["revoked_at"]),
        superseded_at=from_text(row["superseded_at"]),
    )
