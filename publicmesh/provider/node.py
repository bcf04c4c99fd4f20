"""The HTTP node of one agency system: signed queries, bulk answers in Arrow, outbox and event intake."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence

import numpy as np
import orjson
import pyarrow as pa
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from publicmesh.problems import Problem
from publicmesh.protocol import arrow_ipc, bulk_wire
from publicmesh.protocol.ca import read_private_key
from publicmesh.protocol.members import HUB, InvalidMemberId, MemberId
from publicmesh.protocol.schemas import BULK_MAX_BODY, BULK_MAX_SUBJECTS
from publicmesh.protocol.signatures import SignatureError, Signer, Verifier
from publicmesh.protocol.trust import TrustStore, authenticate_request
from publicmesh.provider.definition import AgencyDefinition
from publicmesh.provider.layout import upgrade
from publicmesh.provider.messaging import accept, read_outbox
from publicmesh.provider.reads import StoreReads
from publicmesh.settings import Settings
from publicmesh.storage import engine_for

ARROW_STREAM = arrow_ipc.ARROW_STREAM


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

    def signed(self, member: str, request_id: str, status: int, body: bytes, media_type: str) -> Response:
        signer = self.signers.get(member) or next(iter(self.signers.values()))
        return Response(body, status, headers=signer.sign_response(status, body, request_id), media_type=media_type)


def create_app(node: AgencyNode) -> Starlette:
    agency = node.agency

    async def handle(request: Request, work) -> Response:
        request_id = request.headers.get("mesh-request-id", "")
        body = await request.body()
        member = next(iter(node.members))
        try:
            if len(body) > node.max_body:
                raise Problem("payload-too-large", f"at most {node.max_body} bytes")
            node.authenticate(request, body)
            if request.headers.get("content-type", "").startswith(ARROW_STREAM):  # bulk_wire: the hub's subjects
                fields, subjects = bulk_wire.read_subjects(body, BULK_MAX_SUBJECTS)
                doc = {**fields, "subjects": subjects}
            else:
                doc = orjson.loads(body) if body else {}
            if not isinstance(doc, dict):
                raise Problem("malformed-request", "the body is a JSON object")
            member = doc.get("member", member)
            # In a thread: a list asked while a scan is read (a municipality's names for its forms while the next
            # is scanned) is answered meanwhile, by another SQLite reader, instead of after it.
            status, payload, media = await asyncio.to_thread(work, doc)
        except SignatureError as exc:
            return Problem(exc.reason, exc.detail).response(request_id)
        except Problem as problem:
            return node.signed(
                member if member in node.members else next(iter(node.members)),
                request_id,
                problem.status,
                problem.body(request_id),
                "application/problem+json",
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, InvalidMemberId) as exc:
            problem = Problem("malformed-request", f"{type(exc).__name__}: {exc}")
            return node.signed(
                next(iter(node.members)), request_id, 400, problem.body(request_id), "application/problem+json"
            )
        return node.signed(member, request_id, status, payload, media)

    def dataset_and_attributes(doc: dict):
        dataset = agency.datasets.get(doc.get("dataset"))
        if dataset is None:
            raise Problem("unknown-dataset", f"{agency.system} publishes no dataset {doc.get('dataset')!r}")
        attributes = doc.get("attributes") or [a.name for a in dataset.attributes]
        unknown = [a for a in attributes if dataset.attribute(a) is None]
        if unknown:
            raise Problem("malformed-request", f"unknown attributes: {', '.join(unknown)}")
        return dataset, attributes

    def query(doc: dict):
        member = node.member_of(doc)
        dataset, attributes = dataset_and_attributes(doc)
        subject = doc["subject"]
        if "payload" in doc:  # a submission the hub authorized under a write rule
            writer = agency.writers.get(dataset.name)
            if writer is None:
                raise Problem("not-allowed", f"{dataset.name} takes no submissions")
            with node.engine.begin() as conn:
                answer = writer(conn, agency.tenant_of(member), subject, doc["payload"] or {})
            return 200, orjson.dumps({"subject": subject, "data": answer, "protected": False}), "application/json"
        with node.engine.connect() as conn:
            rows = dataset.lookup(conn, agency.tenant_of(member), [subject], attributes)
        if subject not in rows:
            raise Problem("unknown-subject", f"{member} holds no {dataset.name} for this subject")
        row = rows[subject]
        protected = bool(row.pop("_protected", False))
        return 200, orjson.dumps({"subject": subject, "data": row, "protected": protected}), "application/json"

    def bulk(doc: dict):
        member = node.member_of(doc)
        dataset, attributes = dataset_and_attributes(doc)
        subjects = None if doc.get("scan") is True else doc["subjects"]
        with node.engine.connect() as conn:
            table = dataset.bulk(conn, agency.tenant_of(member), subjects, attributes, wire=True, reads=node.reads)
        if subjects is None:  # a scan: the hub learns the subjects from the answer (in this agency's pseudonyms)
            table = table.append_column("i", pa.array(np.arange(table.num_rows, dtype=np.int32)))
        else:  # which of the asked subjects each row answers
            if "i" not in table.column_names:
                table = table.append_column("i", asked_positions(table.column("subject"), subjects))
            table = table.drop_columns(["subject"])
        return 200, arrow_ipc.to_body(table), ARROW_STREAM

    def outbox(doc: dict):
        with node.engine.connect() as conn:
            events = read_outbox(conn, agency.outbox, int(doc.get("after", 0)), min(int(doc.get("limit", 500)), 5000))
        return 200, orjson.dumps({"events": events}), "application/json"

    def events(doc: dict):
        batch = doc["events"]
        for event in batch:
            node.member_of(event)
        with node.engine.begin() as conn:
            fresh = accept(conn, agency.inbox, batch)
            for event in fresh:
                handler = agency.handlers.get(event["type"])
                if handler:
                    handler(conn, agency, agency.tenant_of(node.members[event["member"]]), event)
        return 200, orjson.dumps({"accepted": len(fresh), "duplicates": len(batch) - len(fresh)}), "application/json"

    async def query_route(request):
        return await handle(request, query)

    async def bulk_route(request):
        return await handle(request, bulk)

    async def outbox_route(request):
        return await handle(request, outbox)

    async def events_route(request):
        return await handle(request, events)

    async def datasets_route(_request):
        return JSONResponse(
            {
                "system": agency.system,
                "title_ja": agency.title_ja,
                "title_en": agency.title_en,
                "members": list(node.members),
                "datasets": [d.describe() for d in agency.datasets.values()],
            }
        )

    async def health(_request):
        return JSONResponse({"status": "ok", "system": agency.system})

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        worker = agency.worker(node.engine, node.settings) if agency.worker else None
        if worker:
            worker.start()
        try:
            yield
        finally:
            if worker:
                worker.stop()

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/healthz", health),
            Route("/v1/datasets", datasets_route),
            Route("/v1/query", query_route, methods=["POST"]),
            Route("/v1/bulk", bulk_route, methods=["POST"]),
            Route("/v1/outbox", outbox_route, methods=["POST"]),
            Route("/v1/events", events_route, methods=["POST"]),
        ],
    )


def asked_positions(answered: pa.ChunkedArray, subjects: Sequence[str] | pa.ChunkedArray) -> pa.Array:
    """The position of each answered subject in the request (the last, where a subject is asked twice)."""
    import polars as pl  # noqa: PLC0415 (heavy: loaded by the first bulk read, not by every importer)

    asked = (
        pl.DataFrame({"subject": pl.Series(subjects, dtype=pl.Utf8)}).with_row_index("i").unique("subject", keep="last")
    )
    found = pl.DataFrame({"subject": pl.Series(answered, dtype=pl.Utf8)}).join(
        asked, on="subject", how="left", maintain_order="left"
    )["i"]
    if found.null_count():
        raise ValueError("the answer names a subject that was not asked for")
    return found.cast(pl.Int32).to_arrow()
