"""Consent records (本人同意) and prior intents (事前の意思表示): values, validation and their signed bytes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from publicmesh.protocol.members import MemberId

Signer = Callable[[bytes], bytes]
Verifier = Callable[[bytes, bytes], bool]

ACTIVE, SUPERSEDED, REVOKED, EXPIRED = "active", "superseded", "revoked", "expired"

# What a resident can say once, in advance, instead of being asked every time (kind → ja, en).
PRIOR_INTENT_KINDS: dict[str, tuple[str, str]] = {
    "auto-pay-eligible-benefits": (
        "受給資格のある給付は申請なしで公金受取口座に支払ってください",
        "Pay me the benefits I am eligible for without an application",
    ),
    "push-notices": (
        "受けられるサービスをお知らせしてください",
        "Tell me about services I am eligible for",
    ),
}
ALL_SERVICES = "*"

_PSEUDONYM = re.compile(r"^[A-Za-z0-9_-]{22}$")
_DATASET = re.compile(r"^[a-z][a-z0-9-]{0,47}/[a-z][a-z0-9-]{0,63}$")
_TEXT_ID = re.compile(r"^[a-z][a-z0-9.-]{0,63}$")
_CANONICAL = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_text(moment: datetime) -> str:
    """Fixed-width UTC text, so that stored timestamps compare correctly as strings on every database."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must carry a time zone")  # a naive time is ambiguous across servers
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def check_person_ref(person_ref: str) -> str:
    if not isinstance(person_ref, str) or not _PSEUDONYM.match(person_ref):
        raise ValueError("person_ref must be the person's 22-character portal pseudonym")
    return person_ref


def check_recipient(recipient: str) -> str:
    return str(MemberId.parse(recipient))


def check_datasets(datasets: Iterable[str]) -> tuple[str, ...]:
    values = tuple(sorted(set(datasets)))
    if not values:
        raise ValueError("a consent names at least one dataset")
    for value in values:
        if not _DATASET.match(value):
            raise ValueError(f"{value!r} is not a provider-system/dataset name")
    return values


def check_scope(scope: Iterable[str]) -> tuple[str, ...]:
    values = tuple(sorted(set(scope)))
    if not values:
        raise ValueError("a prior intent's scope names services or '*'")
    if ALL_SERVICES in values:
        return (ALL_SERVICES,)  # '*' already covers every named service
    for value in values:
        if not _TEXT_ID.match(value):
            raise ValueError(f"{value!r} is not a service id")
    return values


@dataclass(frozen=True, slots=True)
class Purpose:
    """Why the recipient wants the data: a stable id and the text the person agreed to."""

    id: str
    description_ja: str
    description_en: str

    def __post_init__(self) -> None:
        if not _TEXT_ID.match(self.id or ""):
            raise ValueError(f"{self.id!r} is not a purpose id")
        if not self.description_ja.strip() or not self.description_en.strip():
            raise ValueError("a purpose is described in Japanese and English")


@dataclass(frozen=True, slots=True)
class Consent:
    """One version of a person's consent that a recipient may receive named datasets for one purpose."""

    id: str
    version: int
    person_ref: str
    recipient: str
    datasets: tuple[str, ...]
    purpose: Purpose
    valid_from: datetime
    valid_until: datetime
    status: str
    signature: bytes
    created_at: datetime
    revoked_at: datetime | None = None
    superseded_at: datetime | None = None

    def content(self) -> bytes:
        """The canonical JSON the person signed; status and end times are excluded because they change later."""
        return _CANONICAL.encode(
            {
                "type": "publicmesh/consent",  # keeps a consent signature from passing as any other signed object
                "id": self.id,
                "version": self.version,
                "person_ref": self.person_ref,
                "recipient": self.recipient,
                "datasets": list(self.datasets),
                "purpose": {
                    "id": self.purpose.id,
                    "ja": self.purpose.description_ja,
                    "en": self.purpose.description_en,
                },
                "valid_from": to_text(self.valid_from),
                "valid_until": to_text(self.valid_until),
                "created_at": to_text(self.created_at),
            }
        ).encode("utf-8")

    def in_window(self, at: datetime) -> bool:
        return self.valid_from <= at < self.valid_until

    def covers(self, recipient: str, dataset: str, purpose_id: str) -> bool:
        return recipient == self.recipient and dataset in self.datasets and purpose_id == self.purpose.id


@dataclass(frozen=True, slots=True)
class PriorIntent:
    """One version of a person's standing instruction, e.g. to be paid eligible benefits without applying."""

    id: str
    version: int
    person_ref: str
    kind: str
    scope: tuple[str, ...]
    status: str
    signature: bytes
    created_at: datetime
    revoked_at: datetime | None = None
    superseded_at: datetime | None = None

    def content(self) -> bytes:
        """The canonical JSON the person signed."""
        return _CANONICAL.encode(
            {
                "type": "publicmesh/prior-intent",
                "id": self.id,
                "version": self.version,
                "person_ref": self.person_ref,
                "kind": self.kind,
                "scope": list(self.scope),
                "created_at": to_text(self.created_at),
            }
        ).encode("utf-8")

    def covers(self, service_id: str) -> bool:
        return ALL_SERVICES in self.scope or service_id in self.scope

    @property
    def description(self) -> tuple[str, str]:
        return PRIOR_INTENT_KINDS[self.kind]


class StaleConsent(RuntimeError):
    """The record changed (amended or revoked) while this request was changing it; reload and retry."""
