"""Tables of the identity store (SQLAlchemy Core); portable between SQLite and PostgreSQL.

The store knows residents only by ``person_ref``, their pseudonym in the portal's domain, never a My
Number. The only personal data it holds is what a signing certificate itself carries (in its PEM).
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

from publicmesh.storage import upsert

metadata = MetaData()

PERSON_REF = re.compile(r"^[A-Za-z0-9_-]{22}$")


class UtcDateTime(TypeDecorator):
    """An aware UTC datetime on every backend (SQLite hands back naive values; they are UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("identity timestamps must be timezone-aware")
        value = value.astimezone(dt.UTC)
        # A dialect's own matter: SQLite has no time zone type and stores the UTC value naive.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


persons = Table(
    "identity_persons",
    metadata,
    Column("person_ref", String(22), primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
)

# One row per physical card (マイナンバーカード). Private keys are sealed under a per-card key derived from
# the card master secret; PINs are kept only as keyed verifiers. A slot is locked when its failure count
# reaches its limit (3 for the auth PIN, 5 for the signing password).
cards = Table(
    "identity_cards",
    metadata,
    Column("card_id", String(32), primary_key=True),
    Column("person_ref", String(22), ForeignKey("identity_persons.person_ref"), nullable=False),
    Column("status", String(16), nullable=False),  # active | retired
    Column("auth_key", LargeBinary, nullable=False),
    Column("signing_key", LargeBinary, nullable=False),
    Column("auth_pin", LargeBinary, nullable=False),
    Column("signing_pin", LargeBinary, nullable=False),
    Column("auth_failures", Integer, nullable=False),
    Column("signing_failures", Integer, nullable=False),
    Column("auth_certificate", Text),
    Column("signing_certificate", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_identity_cards_person", "person_ref"),
)

# The issuance register of the JPKI authority: every certificate it signed, with its revocation state.
certificates = Table(
    "identity_certificates",
    metadata,
    Column("serial", String(40), primary_key=True),  # lowercase hex of the X.509 serial number
    Column("kind", String(16), nullable=False),  # auth | signing | wallet
    Column("person_ref", String(22), ForeignKey("identity_persons.person_ref"), nullable=False),
    Column("card_id", String(32)),
    Column("device_id", String(32)),
    Column("status", String(16), nullable=False),  # good | revoked
    Column("issued_at", UtcDateTime, nullable=False),
    Column("not_after", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
    Column("reason", String(32)),  # RFC 5280 CRLReason, e.g. affiliationChanged
    Column("pem", Text, nullable=False),
    Index("ix_identity_certificates_person", "person_ref", "kind", "status"),
    Index("ix_identity_certificates_status", "status"),
)

wallet_devices = Table(
    "identity_wallet_devices",
    metadata,
    Column("device_id", String(32), primary_key=True),
    Column("person_ref", String(22), ForeignKey("identity_persons.person_ref"), nullable=False),
    Column("device_name", Text, nullable=False),
    Column("serial", String(40), nullable=False),
    Column("enrolled_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
    Index("ix_identity_wallet_devices_person", "person_ref"),
)

challenges = Table(
    "identity_challenges",
    metadata,
    Column("challenge_id", String(32), primary_key=True),
    Column("nonce", LargeBinary, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime),
    Index("ix_identity_challenges_expires", "expires_at"),
)

mandates = Table(
    "identity_mandates",
    metadata,
    Column("mandate_id", String(32), primary_key=True),
    Column("principal_ref", String(22), nullable=False),
    Column("proxy_ref", String(22), nullable=False),
    Column("scopes", Text, nullable=False),  # comma-separated, sorted
    Column("valid_from", UtcDateTime, nullable=False),
    Column("valid_until", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
    Column("revoked_by", String(22)),
    Index("ix_identity_mandates_principal", "principal_ref"),
    Index("ix_identity_mandates_proxy", "proxy_ref"),
)


def create_all(engine: Engine) -> None:
    """Create the identity tables where missing."""
    metadata.create_all(engine)


def check_person_ref(person_ref: str) -> str:
    """A portal pseudonym: 22 URL-safe base64 characters (never a My Number)."""
    if not isinstance(person_ref, str) or not PERSON_REF.match(person_ref):
        raise ValueError(f"a person_ref is 22 URL-safe base64 characters, got {person_ref!r}")
    return person_ref


def ensure_person(conn: Connection, person_ref: str) -> None:
    """Register a person (by pseudonym) the first time a certificate is issued to them."""
    check_person_ref(person_ref)
    upsert(conn, persons, {"person_ref": person_ref, "created_at": utc_now()}, key=["person_ref"])
