"""One exchange record (情報提供等記録) and its canonical bytes, which are the Merkle leaf data."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime

import orjson
import pyarrow as pa

from publicmesh.audit.subjects import KeptTrees, SubjectTree
from publicmesh.audit.subjects import build as build_subject_tree

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

    def for_subjects(self, subjects: Sequence[str] | pa.Array, *, recent: bool = False) -> SubjectBatch:
        """The record of one exchange about all these subjects: one entry in the log, a record for each person.
        ``recent``: its subject tree is kept for another record of the same subjects (subjects.KeptTrees)."""
        return SubjectBatch(self, subjects, recent=recent)

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


class SubjectBatch:
    """One exchange record about many subjects (a bulk exchange, a batch of notices): a single entry of the log,
    whose leaf commits to the subjects, sorted and unique, through a subject tree (see audit/subjects.py), so
    each of them has a record of their own to find and prove. The shared record's fields were checked when it
    was made; the subjects are checked when the tree is built (by the log's writer, off the caller's path)."""

    __slots__ = ("template", "subjects", "recent", "_tree")

    def __init__(
        self, template: ExchangeRecord, subjects: Sequence[str] | pa.Array | pa.ChunkedArray, *, recent: bool = False
    ) -> None:
        if not isinstance(template, ExchangeRecord):
            raise TypeError(f"expected ExchangeRecord, got {type(template).__name__}")
        if not isinstance(subjects, (pa.Array, pa.ChunkedArray)):
            subjects = list(subjects)
            for subject in subjects:
                if not isinstance(subject, str):
                    raise TypeError(f"subject must be str, got {type(subject).__name__}")
        self.template, self.subjects, self.recent = template, subjects, recent
        self._tree: SubjectTree | None = None

    def __len__(self) -> int:
        return len(self.subjects)

    @property
    def tree(self) -> SubjectTree:
        """The subject tree, built once."""
        return self.build_tree()

    def build_tree(self, kept: KeptTrees | None = None) -> SubjectTree:
        """The subject tree, built once: taken from ``kept`` (the log's) where it holds one of the same subjects,
        and kept there for the next record of them when this record is ``recent`` (a scan's)."""
        if self._tree is None:
            self._tree = (
                build_subject_tree(self.subjects) if kept is None else kept.build(self.subjects, keep=self.recent)
            )
        return self._tree

    def record_for(self, subject: str) -> ExchangeRecord:
        """The record as the person named sees it: the shared fields with their subject."""
        return replace(self.template, subject=subject)

    def canonical_bytes(self, position: int) -> bytes:
        return batch_canonical_bytes(self.template, position, self.tree.count, self.tree.root)


def batch_canonical_bytes(template: ExchangeRecord, position: int, count: int, root: bytes) -> bytes:
    """The leaf data of an exchange record about many subjects: the shared fields, the position, and in place of
    one subject the count and root of the subject tree (a record about one subject always has "subject")."""
    body = template.as_dict()
    del body["subject"]
    body["position"] = position
    body["subjects"] = {"count": count, "root": base64.b64encode(root).decode()}
    return orjson.dumps(body, option=_CANONICAL_OPTION)


def canonical_bytes(record: ExchangeRecord, position: int) -> bytes:
    """Deterministic JSON of the record and its log position; the position makes reordering detectable."""
    body = record.as_dict()
    body["position"] = position
    return orjson.dumps(body, option=_CANONICAL_OPTION)
