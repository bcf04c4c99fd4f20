"""The node of one agency system: its state, and its answers to queries, bulk queries, outbox reads and events."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import orjson
import pyarrow as pa
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import Response

from publicmesh.problems import Problem
from publicmesh.protocol import arrow_ipc
from publicmesh.protocol.ca import read_private_key
from publicmesh.protocol.members import HUB, MemberId
from publicmesh.protocol.schemas import BULK_MAX_BODY
from publicmesh.protocol.signatures import Signer, Verifier
from publicmesh.protocol.trust import TrustStore, authenticate_request
from publicmesh.provider.datasets import Dataset
from publicmesh.provider.definition import AgencyDefinition
from publicmesh.provider.layout import upgrade
from publicmesh.provider.messaging import accept, read_outbox
from publicmesh.provider.reads import StoreReads
from publicmesh.settings import Settings
from publicmesh.storage import engine_for

ARROW_STREAM = arrow_ipc.ARROW_STREAM
Answer = tuple[int, bytes | memoryview, str]  # status, body, media type


def direct_consumers() -> set[str]:
    """Members allowed to call a node without the hub: the hub, plus any named for benchmarks."""
    extra = os.environ.get("PUBLICMESH_DIRECT_CONSUMERS", "")
    return {str(HUB), *filter(None, (m.strip() for m in extra.split(",")))}


class AgencyNode:
    """State of a running node: its own engine, its members' keys, the keys it trusts."""

    def __init__(
        self, agency: AgencyDefinition, settings: Settings, municipalities: Sequence[str], engine: Engine | None = None
    ):
        self.agency, self.settings = agency, settings
        self.engine = engine or engine_for(agency.system, settings)
        agency.metadata.create_all(self.engine)
        upgrade(self.engine, agency.metadata)  # a store seeded by an earlier version: clustered once, here
        self.members = {str(m): m for m in agency.members(municipalities)}
        self.signers = {
            name: Signer(name, read_private_key(settings.keys_dir / "members" / f"{m.file_stem}.key"))
            for name, m in self.members.items()
        }
        self.trust = TrustStore.from_keys_dir(settings.keys_dir)
        self.verifier = Verifier(self.trust.key, settings.signature_max_age_s)
        self.accepted = direct_consumers()
        self.max_body = settings.max_body_bytes * BULK_MAX_BODY  # bulk requests carry many subjects
        self.outbox_cursor = 0  # the hub's cursor when it last read the outbox: the events after it wait
        self.reads = StoreReads.from_settings(settings)  # what its bulk reads share: gathered scans, tenant sizes

    def authenticate(self, request: Request, body: bytes) -> str:
        caller = authenticate_request(
            self.trust, self.verifier, request.method, request.url.path, request.headers, body
        )
        if caller not in self.accepted:
            raise Problem("not-a-consumer", f"{caller} must query through the hub")
        return caller

    def member_of(self, doc: dict) -> MemberId:
        name = doc.get("member")
        if name not in self.members:
            raise Problem("unknown-member", f"this node does not serve {name!r}")
        return self.members[name]

    def signed(self, member: str, request_id: str, status: int, body: bytes | memoryview, media_type: str) -> Response:
        signer = self.signers.get(member) or next(iter(self.signers.values()))
        return Response(body, status, headers=signer.sign_response(status, body, request_id), media_type=media_type)


def dataset_and_attributes(agency: AgencyDefinition, doc: dict) -> tuple[Dataset, list[str]]:
    name = doc.get("dataset")
    dataset = agency.datasets.get(name) if name is not None else None
    if dataset is None:
        raise Problem("unknown-dataset", f"{agency.system} publishes no dataset {name!r}")
    attributes = doc.get("attributes") or [a.name for a in dataset.attributes]
    unknown = [a for a in attributes if dataset.attribute(a) is None]
    if unknown:
        raise Problem("malformed-request", f"unknown attributes: {', '.join(unknown)}")
    return dataset, attributes


def query(node: AgencyNode, doc: dict) -> Answer:
    """One subject's attributes, or a submission the hub authorized under a write rule."""
    agency = node.agency
    member = node.member_of(doc)
    dataset, attributes = dataset_and_attributes(agency, doc)
    subject = doc["subject"]
    if not isinstance(subject, str):
        raise Problem("malformed-request", "subject is a pseudonym (text)")
    if "payload" in doc:  # a submission the hub authorized under a write rule
        writer = agency.writers.get(dataset.name)
        if writer is None:
            raise Problem("not-allowed", f"{dataset.name} takes no submissions")
        payload = doc["payload"] or {}
        if not isinstance(payload, dict):
            raise Problem("malformed-request", "payload is an object")
        with node.engine.begin() as conn:
            answer = writer(conn, agency.tenant_of(member), subject, payload)
        return 200, orjson.dumps({"subject": subject, "data": answer, "protected": False}), "application/json"
    with node.engine.connect() as conn:
        rows = dataset.lookup(conn, agency.tenant_of(member), [subject], attributes)
    if subject not in rows:
        raise Problem("unknown-subject", f"{member} holds no {dataset.name} for this subject")
    row = rows[subject]
    protected = bool(row.pop("_protected", False))
    return 200, orjson.dumps({"subject": subject, "data": row, "protected": protected}), "application/json"


def on_the_loop(work, doc: dict) -> bool:
    """Whether ``work`` is one subject's read: one indexed lookup, answered on the event loop, where handing it to a
    thread and back cost the direct path a third of its speed (issue 21). A submission may wait for the store's
    write lock, so it is handed to a thread like every other answer."""
    return work is query and "payload" not in doc


def bulk(node: AgencyNode, doc: dict) -> Answer:
    """Many subjects' attributes (or a scan of the member's municipality) as an Arrow stream, rows marked by "i"."""
    member = node.member_of(doc)
    dataset, attributes = dataset_and_attributes(node.agency, doc)
    subjects = None if doc.get("scan") is True else doc["subjects"]
    # An Arrow column (bulk_wire) holds texts only; a JSON list is checked, as the store would take no other value.
    if not (subjects is None or isinstance(subjects, pa.ChunkedArray)) and not (
        isinstance(subjects, list) and all(isinstance(s, str) for s in subjects)
    ):
        raise Problem("malformed-request", "subjects are a list of pseudonyms (texts)")
    with node.engine.connect() as conn:
        table = dataset.bulk(conn, node.agency.tenant_of(member), subjects, attributes, wire=True, reads=node.reads)
    if subjects is None:  # a scan: the hub learns the subjects from the answer (in this agency's pseudonyms)
        table = table.append_column("i", pa.array(np.arange(table.num_rows, dtype=np.int32)))
    else:  # which of the asked subjects each row answers
        if "i" not in table.column_names:
            table = table.append_column("i", asked_positions(table.column("subject"), subjects))
        table = table.drop_columns(["subject"])
    return 200, arrow_ipc.to_body(table), ARROW_STREAM


def outbox(node: AgencyNode, doc: dict) -> Answer:
    """The events after the hub's cursor, for it to route."""
    after, limit = doc.get("after", 0), doc.get("limit", 500)
    if type(after) is not int or type(limit) is not int or not 0 <= after < 2**63 or limit < 1:
        raise Problem("malformed-request", "after is a position (0 to 2^63 - 1) and limit at least 1")
    with node.engine.connect() as conn:
        events = read_outbox(conn, node.agency.outbox, after, min(limit, 5000))
    node.outbox_cursor = after
    return 200, orjson.dumps({"events": events}), "application/json"


def accept_events(node: AgencyNode, doc: dict) -> Answer:
    """Events the hub delivers: each taken once (by its idempotency key) and handed to its handler."""
    agency = node.agency
    batch = doc["events"]
    if not isinstance(batch, list):
        raise Problem("malformed-request", "events is a list")
    for event in batch:
        well_formed(event)
        node.member_of(event)
    with node.engine.begin() as conn:
        fresh = accept(conn, agency.inbox, batch)
        for event in fresh:
            handler = agency.handlers.get(event["type"])
            if handler:
                handler(conn, agency, agency.tenant_of(node.members[event["member"]]), event)
    return 200, orjson.dumps({"accepted": len(fresh), "duplicates": len(batch) - len(fresh)}), "application/json"


EVENT_FIELDS = ("idempotency_key", "member", "source", "type", "subject", "occurred_at")


def well_formed(event) -> None:
    """An event as the hub delivers it: its fields texts, its data an object; else a malformed request."""
    if (
        not isinstance(event, dict)
        or not all(isinstance(event.get(name), str) for name in EVENT_FIELDS)
        or not isinstance(event.get("data"), dict)
    ):
        raise Problem("malformed-request", f"an event is an object of texts {', '.join(EVENT_FIELDS)} and data")


def describe(node: AgencyNode) -> dict:
    """The node's catalog entry: its system, members and datasets."""
    agency = node.agency
    return {
        "system": agency.system,
        "title_ja": agency.title_ja,
        "title_en": agency.title_en,
        "members": list(node.members),
        "datasets": [d.describe() for d in agency.datasets.values()],
    }


def asked_positions(answered: pa.ChunkedArray, subjects: Sequence[str] | pa.ChunkedArray) -> pa.Array:
    """The position of each answered subject in the request (the last, where a subject is asked twice)."""
    import polars as pl  # noqa: PLC0415 (deferred: about 40 MB, loaded by a node's first bulk read only)

    asked = (
        pl.DataFrame({"subject": pl.Series(subjects, dtype=pl.Utf8)}).with_row_index("i").unique("subject", keep="last")
    )
    found = pl.DataFrame({"subject": pl.Series(answered, dtype=pl.Utf8)}).join(
        asked, on="subject", how="left", maintain_order="left"
    )["i"]
    if found.null_count():
        raise ValueError("the answer names a subject that was not asked for")
    return found.cast(pl.Int32).to_arrow()
