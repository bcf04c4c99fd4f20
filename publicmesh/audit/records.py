"""One exchange record (情報提供等記録) and its canonical bytes, which are the Merkle leaf data."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from datetime import UTC, datetime

KINDS = ("query", "bulk-item", "event", "notice")
OUTCOMES = ("ok", "denied", "not-found", "withheld", "error")

# Built once: json.dumps with options would construct a new encoder on every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)

_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_OUTCOME = re.compile(r"[a-z][a-z0-9-]*")


def utc_timestamp(moment: datetime | None = None) -> str:
    """UTC ISO-8601 with milliseconds, e.g. ``2026-11-23T02:52:01.123Z`` (the only accepted form of ``at``)."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class ExchangeRecord:
    """Who received which attributes of whose data from whom, why, under which law, and what happened."""

    kind: str
    at: str
    consumer: str
    provider: str
    dataset: str
    attributes: tuple[str, ...]
    purpose: str
    legal_basis: str
    subject: str
    request_id: str
    outcome: str

    def __post_init__(self) -> None:
        if isinstance(self.attributes, str):
            raise TypeError("attributes must be a sequence of names, not one string")
        object.__setattr__(self, "attributes", tuple(self.attributes))
        for f in fields(self):
            values = getattr(self, f.name) if f.name == "attributes" else (getattr(self, f.name),)
            for value in values:
                if not isinstance(value, str):
                    raise TypeError(f"{f.name} must be str, got {type(value).__name__}")
                # Lone surrogates cannot be encoded; refusing them here keeps a bad record out of a batch.
                value.encode("utf-8")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not _AT.fullmatch(self.at):
            raise ValueError(f"at must look like 2026-11-23T02:52:01.123Z, got {self.at!r}")
        if not _OUTCOME.fullmatch(self.outcome):
            raise ValueError(f"outcome must be a lower-case word such as {OUTCOMES}, got {self.outcome!r}")

    def as_dict(self) -> dict[str, object]:
        """The fields as plain JSON values (attributes as a list)."""
        return {
            "kind": self.kind,
            "at": self.at,
            "consumer": self.consumer,
            "provider": self.provider,
            "dataset": self.dataset,
            "attributes": list(self.attributes),
            "purpose": self.purpose,
            "legal_basis": self.legal_basis,
            "subject": self.subject,
            "request_id": self.request_id,
            "outcome": self.outcome,
        }


def canonical_bytes(record: ExchangeRecord, position: int) -> bytes:
    """Deterministic JSON of the record and its log position; the position makes reordering detectable."""
    body = record.as_dict()
    body["position"] = position
    return _CANONICAL.encode(body).encode("utf-8")
