"""Verifying a person's email address or mobile number with a 6-digit code before notices are sent there."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func, select, update

from publicmesh.notices.channels import Channel, OutgoingMessage
from publicmesh.notices.model import (
    Contact,
    VerificationRateLimited,
    check_person_ref,
    from_text,
    to_text,
    utc_now,
)
from publicmesh.notices.schema import contact_codes, contacts, ensure_schema

CODE_LIFETIME = timedelta(minutes=10)
MAX_ATTEMPTS = 5
MAX_CODES_PER_HOUR = 5
KINDS = ("email", "phone")

_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,252}\.[A-Za-z]{2,63}$")
_MOBILE = re.compile(r"^0[6789]0\d{8}$")  # SMS reaches only mobile numbers (060/070/080/090)


def normalize_address(kind: str, address: str) -> str:
    """The canonical form of an email address or a Japanese mobile number; ValueError when it is neither."""
    text = unicodedata.normalize("NFKC", address or "").strip()
    if kind == "email":
        local, _, domain = text.rpartition("@")
        text = f"{local}@{domain.lower()}"  # domains are case-insensitive, local parts need not be
        if not _EMAIL.match(text):
            raise ValueError("not an email address")
        return text
    if kind == "phone":
        digits = re.sub(r"[\s\-()]", "", text)
        if digits.startswith("+81"):
            digits = "0" + digits[3:]
        if not _MOBILE.match(digits):
            raise ValueError("not a Japanese mobile number")
        return digits
    raise ValueError(f"unknown contact kind {kind!r}")


def _hash(code: str, salt: bytes) -> bytes:
    # scrypt, not a plain hash: a 6-digit code has only a million values, so a leaked row must stay costly
    # to brute-force for longer than the code lives.
    return hashlib.scrypt(code.encode("ascii"), salt=salt, n=2**14, r=8, p=1, dklen=32)


def start_contact_verification(
    engine: Engine,
    person_ref: str,
    kind: str,
    address: str,
    *,
    channel: Channel,
    now: datetime | None = None,
) -> str:
    """Sends a 6-digit code to the address and returns the code's id, to be confirmed within 10 minutes."""
    ensure_schema(engine)
    check_person_ref(person_ref)
    address = normalize_address(kind, address)
    now = now or utc_now()
    with engine.connect() as conn:
        recent = conn.execute(
            select(func.count())
            .select_from(contact_codes)
            .where(
                contact_codes.c.person_ref == person_ref,
                contact_codes.c.created_at > to_text(now - timedelta(hours=1)),
            )
        ).scalar_one()
    if recent >= MAX_CODES_PER_HOUR:
        raise VerificationRateLimited("too many verification codes in the last hour; try again later")
    code = f"{secrets.randbelow(1_000_000):06d}"
    code_id, salt = secrets.token_urlsafe(16), secrets.token_bytes(16)
    with engine.begin() as conn:
        conn.execute(
            contact_codes.insert(),
            {
                "id": code_id,
                "person_ref": person_ref,
                "kind": kind,
                "address": address,
                "salt": salt,
                "code_hash": _hash(code, salt),
                "attempts": 0,
                "created_at": to_text(now),
                "expires_at": to_text(now + CODE_LIFETIME),
                "confirmed_at": None,
            },
        )
    text = (
        f"公共サービスメッシュの確認コード: {code}（10分間有効）。このコードは誰にも教えないでください。\n"
        f"Public Service Mesh verification code: {code} (valid for 10 minutes). Never share it."
    )
    if kind == "email":
        channel.send(
            OutgoingMessage("email", address, "【公共サービスメッシュ】確認コード / Verification code", text, code_id)
        )
    else:
        channel.send(OutgoingMessage("sms", address, "", text, code_id))
    return code_id


def confirm_contact(engine: Engine, person_ref: str, code_id: str, code: str, *, now: datetime | None = None) -> bool:
    """True, and the address becomes the person's contact, when the code is right, fresh and not over-tried."""
    ensure_schema(engine)
    now_text = to_text(now or utc_now())
    with engine.begin() as conn:
        row = (
            conn.execute(
                select(contact_codes).where(contact_codes.c.id == code_id, contact_codes.c.person_ref == person_ref)
            )
            .mappings()
            .first()
        )
        if row is None or row["confirmed_at"] is not None or row["expires_at"] <= now_text:
            return False
        # The attempt is counted (and committed) before the code is compared, so parallel guesses share the limit.
        counted = conn.execute(
            update(contact_codes)
            .where(
                contact_codes.c.id == code_id,
                contact_codes.c.attempts < MAX_ATTEMPTS,
                contact_codes.c.confirmed_at.is_(None),
            )
            .values(attempts=contact_codes.c.attempts + 1)
        ).rowcount
    if counted != 1:
        return False
    typed = unicodedata.normalize("NFKC", code or "").strip()
    if not (len(typed) == 6 and typed.isdigit() and hmac.compare_digest(_hash(typed, row["salt"]), row["code_hash"])):
        return False
    with engine.begin() as conn:
        confirmed = conn.execute(
            update(contact_codes)
            .where(contact_codes.c.id == code_id, contact_codes.c.confirmed_at.is_(None))
            .values(confirmed_at=now_text)
        ).rowcount
        if confirmed != 1:
            return False
        conn.execute(delete(contacts).where(contacts.c.person_ref == person_ref, contacts.c.kind == row["kind"]))
        conn.execute(
            contacts.insert(),
            {"person_ref": person_ref, "kind": row["kind"], "address": row["address"], "verified_at": now_text},
        )
    return True


def contacts_of(engine: Engine, person_ref: str) -> list[Contact]:
    """The person's verified contacts (at most one email and one phone)."""
    ensure_schema(engine)
    with engine.connect() as conn:
        rows = (
            conn.execute(select(contacts).where(contacts.c.person_ref == person_ref).order_by(contacts.c.kind))
            .mappings()
            .all()
        )
    return [Contact(row["kind"], row["address"], from_text(row["verified_at"])) for row in rows]


def remove_contact(engine: Engine, person_ref: str, kind: str) -> bool:
    """Forgets the person's email or phone; True when there was one."""
    ensure_schema(engine)
    with engine.begin() as conn:
        return (
            conn.execute(delete(contacts).where(contacts.c.person_ref == person_ref, contacts.c.kind == kind)).rowcount
            > 0
        )


def owns_code(engine: Engine, person_ref: str, code_id: str) -> bool:
    """Whether ``code_id`` is one of this person's verifications (the portal answers 404 otherwise)."""
    ensure_schema(engine)
    with engine.connect() as conn:
        return (
            conn.execute(
                select(contact_codes.c.id).where(
                    contact_codes.c.id == code_id, contact_codes.c.person_ref == person_ref
                )
            ).first()
            is not None
        )
