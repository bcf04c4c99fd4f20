"""One exchange record (情報提供等記録) and its canonical bytes, which are the Merkle leaf data."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime

import orjson

KINDS = ("query", "bulk-item", "event", "notice")
OUTCOMES = ("ok", "denied", "not-found", "withheld", "error")

# The canonical form is JSON with sorted keys, no spaces, and non-ASCII kept as UTF-8. orjson writes exactly
# these bytes for the record's strings and integers (tests compare it with the standard library's encoder).
_CANONICAL_OPTION = orjson.OPT_SORT_KEYS

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

    def for_subjects(self, subjects: Sequence[str]) -> SubjectBatch:
        """The same record for each subject: one bulk exchange leaves one record per person."""
        return SubjectBatch(self, subjects)

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


class SubjectBatch(Sequence):
    """The records of one exchange that differ only in their subject, kept as the shared record and the subjects:
    a bulk exchange of a whole municipality leaves hundreds of thousands of them. The shared record's fields were
    checked when it was made; each subject is checked here for being a string UTF-8 can encode."""

    __slots__ = ("template", "subjects")

    def __init__(self, template: ExchangeRecord, subjects: Sequence[str]) -> None:
        if not isinstance(template, ExchangeRecord):
            raise TypeError(f"expected ExchangeRecord, got {type(template).__name__}")
        subjects = list(subjects)
        for subject in subjects:
            if not isinstance(subject, str):
                raise TypeError(f"subject must be str, got {type(subject).__name__}")
            subject.encode("utf-8")
        self.template, self.subjects = template, subjects

    def __len__(self) -> int:
        return len(self.subjects)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return SubjectBatch(self.template, self.subjects[index])
        record = object.__new__(ExchangeRecord)
        for f in fields(ExchangeRecord):
            object.__setattr__(record, f.name, getattr(self.template, f.name))
        object.__setattr__(record, "subject", self.subjects[index])
        return record

    def canonical_leaves(self, start: int, prefix: bytes = b"") -> list[bytes]:
        """The leaf data (canonical bytes) of each record at consecutive positions from ``start``: the shared
        fields are encoded once, only the position and the subject per record (equal to canonical_bytes).
        ``prefix`` goes before each (the leaf hash's 0x00, so the log hashes them without another copy)."""
        before, between, after = _canonical_parts(self.template)
        before = prefix + before
        dumps = orjson.dumps
        return [b"".join((before, str(start + i).encode(), between, dumps(subject), after))
                for i, subject in enumerate(self.subjects)]


def _canonical_parts(record: ExchangeRecord) -> tuple[bytes, bytes, bytes]:
    """The canonical bytes of a record split around its position and its subject. With sorted keys they are
    ...,"position":N,"provider":...,"request_id":...,"subject":S}: nothing follows the subject but the brace,
    and '"position":0,' cannot occur inside a value, where every quote is escaped."""
    body = record.as_dict()
    body["position"], body["subject"] = 0, ""
    whole = orjson.dumps(body, option=_CANONICAL_OPTION)
    before, found, rest = whole.partition(b'"position":0,')
    if not found or not rest.endswith(b'"subject":""}'):
        raise ValueError("unexpected canonical form")
    return before + b'"position":', b"," + rest[:-len(b'"subject":""}')] + b'"subject":', b"}"


def canonical_bytes(record: ExchangeRecord, position: int) -> bytes:
    """Deterministic JSON of the record and its log position; the position makes reordering detectable."""
    body = record.as_dict()
    body["position"] = position
    return orjson.dumps(body, option=_CANONICAL_OPTION)
