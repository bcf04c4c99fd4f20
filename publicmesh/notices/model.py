"""Notices (お知らせ / 電子送達): what a sender drafts, what the person's inbox holds, and the errors around them."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from publicmesh.protocol.members import MemberId

# The first four are also what services name in the hub's Notice (mesh/schemas.py); the inbox files them as sent.
CATEGORIES = (
    "service-eligibility",
    "application-decision",
    "payout",
    "account-request",
    "decision",
    "document",
    "security",
    "info",
)
CHANNELS = ("email", "sms")  # besides the inbox, which always receives the notice
CONTACT_FOR_CHANNEL = {"email": "email", "sms": "phone"}
TEXT_FIELDS = ("title_ja", "title_en", "body_ja", "body_en")  # what a notice says, stored once per distinct text

_PSEUDONYM = re.compile(r"^[A-Za-z0-9_-]{22}$")
_valid_senders: set[str] = set()  # parsed once each: bulk sends repeat the same few senders 100,000 times


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_text(moment: datetime) -> str:
    """Fixed-width UTC text, so that stored timestamps compare correctly as strings on every database."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must carry a time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def new_id() -> str:
    """Time-ordered and unguessable: newest-first pages sort on it, and nobody can enumerate others' notices."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def text_id(texts: tuple[str, str, str, str]) -> str:
    """The digest of a notice's texts (TEXT_FIELDS, 128 bits of SHA-256 in hex): the same texts are stored once."""
    return hashlib.sha256(json.dumps(list(texts), ensure_ascii=False).encode()).hexdigest()[:32]


def check_person_ref(person_ref: str) -> str:
    if not isinstance(person_ref, str) or not _PSEUDONYM.match(person_ref):
        raise ValueError("person_ref must be the person's 22-character portal pseudonym")
    return person_ref


def check_sender(sender: str) -> str:
    if sender not in _valid_senders:
        MemberId.parse(sender)
        _valid_senders.add(sender)
    return sender


@dataclass(frozen=True, slots=True)
class NoticeDraft:
    """A notice as its sender writes it; ``idempotency_key`` makes sending it again return the first one."""

    person_ref: str
    sender: str
    category: str
    title_ja: str
    title_en: str
    body_ja: str
    body_en: str
    links: dict[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    channels: tuple[str, ...] = ()  # e.g. ("email",): also nudge the person outside the portal

    def check(self) -> None:
        check_person_ref(self.person_ref)
        check_sender(self.sender)
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown notice category {self.category!r}")
        if not self.title_ja or not self.title_en:
            raise ValueError("a notice has a Japanese and an English title")
        for channel in self.channels:
            if channel not in CHANNELS:
                raise ValueError(f"unknown channel {channel!r}")


@dataclass(frozen=True, slots=True)
class Notice:
    """A notice in a person's inbox, with its delivery status on each channel."""

    id: str
    person_ref: str
    sender: str
    category: str
    title_ja: str
    title_en: str
    body_ja: str
    body_en: str
    links: dict[str, str]
    idempotency_key: str
    delivery: dict[str, str]
    created_at: datetime
    read_at: datetime | None = None

    @property
    def is_read(self) -> bool:
        return self.read_at is not None

    def title(self, lang: str = "ja") -> str:
        return self.title_en if lang == "en" else self.title_ja

    def body(self, lang: str = "ja") -> str:
        return self.body_en if lang == "en" else self.body_ja


@dataclass(frozen=True, slots=True)
class Contact:
    """A verified way to reach the person outside the portal."""

    kind: str  # "email" | "phone"
    address: str
    verified_at: datetime


class NoticeNotFound(LookupError, PermissionError):
    """No such notice for this person: unknown and someone else's look the same, so the portal answers 404."""


class VerificationRateLimited(RuntimeError):
    """Too many verification codes asked for recently (each one costs an email or an SMS)."""


def dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
