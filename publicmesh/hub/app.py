"""The hub's HTTP app: the exchange, the catalog and the audit checkpoints."""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from contextlib import asynccontextmanager

import orjson
from cryptography import x509
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from publicmesh.audit import AsyncAuditAppender, AuditLog, load_or_create_audit_key
from publicmesh.hub.catalog import Catalog
from publicmesh.hub.events import EventRouter
from publicmesh.hub.exchange import Exchange
from publicmesh.hub.numbers_client import NumbersClient
from publicmesh.hub.registry import Directory
from publicmesh.hub.rules import RuleBook
from publicmesh.problems import PROBLEM_TYPES, Problem, preferred_language
from publicmesh.protocol import arrow_ipc, bulk_wire, notices_wire
from publicmesh.protocol.arrow_ipc import ARROW_STREAM
from publicmesh.protocol.ca import read_private_key
from publicmesh.protocol.members import HUB, NUMBERS, MemberId
from publicmesh.protocol.outbound import Outbound
from publicmesh.protocol.schemas import (
    BULK_MAX_BODY,
    BulkRequest,
    NotifyRequest,
    QueryAnswer,
    QueryRequest,
    RecordsRequest,
)
from publicmesh.protocol.signatures import SignatureError, Signer, Verifier
from publicmesh.protocol.trust import certificate_header
from publicmesh.settings import Settings, get_settings
from publicmesh.storage import engine_for

log = logging.getLogger(__name__)
_PROBLEM_RESPONSES = {
    s: {"description": t, "content": {"application/problem+json": {}}}
    for s, t in (
        (400, "Malformed request"),
        (401, "Unsigned, badly signed, stale or replayed"),
        (403, "No access rule allows it"),
        (404, "Unknown subject, member or dataset"),
        (413, "Too large"),
        (502, "Provider answer not verifiable"),
        (503, "Provider unavailable"),
        (504, "Provider timeout"),
    )
}


class Hub:
    """Everything the hub process holds, wired in one place."""

    def __init__(self, settings: Settings, numbers_url: str, *, route_events: bool = True):
        keys = settings.keys_dir
        ca = x509.load_pem_x509_certificate((keys / "mesh-ca.pem").read_bytes())
        self.settings = settings
        self.engine = engine_for("hub", settings)
        self.directory = Directory(self.engine, ca)
        self.rules = RuleBook.load()
        self.signer = Signer(str(HUB), read_private_key(keys / "members" / f"{HUB.file_stem}.key"))
        hub_pem = (keys / "members" / f"{HUB.file_stem}.pem").read_text()
        self.verifier = Verifier(self.directory.trust.key, settings.signature_max_age_s)
        self.outbound = Outbound(
            self.signer,
            certificate_header(hub_pem),
            Verifier(self.directory.trust.key, 300),
            settings.provider_timeout_s,
        )
        self.audit_log = AuditLog(
            engine_for("audit", settings), load_or_create_audit_key(keys), keeps_trees_over=settings.hub_keeps_over
        )
        self.audit = AsyncAuditAppender(self.audit_log)
        self.catalog = Catalog(self.directory, self.rules, settings.provider_timeout_s)
        self.exchange = Exchange(
            self.directory,
            self.rules,
            self.catalog,
            NumbersClient(self.outbound, numbers_url, str(NUMBERS), settings.hub_keeps_over),
            self.outbound,
            self.audit,
        )
        self.events = EventRouter(self.exchange, self.engine) if route_events else None
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        await self.outbound.start()
        await self.audit.start()
        self._tasks.append(asyncio.create_task(self.catalog.warm()))
        if self.events:
            self._tasks.append(asyncio.create_task(self.events.run()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.audit.close()
        await self.outbound.close()

    def authenticate(self, request: Request, body: bytes) -> MemberId:
        return MemberId.parse(self.verifier.verify_request(request.method, request.url.path, request.headers, body))

    def answer(self, status: int, body: bytes, request_id: str, media_type: str) -> Response:
        return Response(
            body, status, headers=self.signer.sign_response(status, body, request_id), media_type=media_type
        )

    def problem(self, problem: Problem, request: Request, request_id: str) -> Response:
        body = problem.body(request_id, preferred_language(request.headers.get("accept-language")))
        return self.answer(problem.status, body, request_id, "application/problem+json")


async def _signed_body(hub: Hub, request: Request, limit: int) -> tuple[MemberId, bytes]:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Problem("payload-too-large", f"the body may be at most {limit} bytes")
    body = await request.body()
    if len(body) > limit:
        raise Problem("payload-too-large", f"the body may be at most {limit} bytes")
    try:
        return hub.authenticate(request, body), body
    except SignatureError as exc:
        raise Problem(exc.reason, exc.detail) from None


async def _signed_request(hub: Hub, request: Request, model, limit: int):
    """The authenticated consumer and its request body, validated against ``model``."""
    consumer, body = await _signed_body(hub, request, limit)
    try:
        return consumer, model.model_validate_json(body)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _invalid(exc: ValidationError) -> Problem:
    errors = [{"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors(include_url=False)]
    return Problem("malformed-request", "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5]), errors=errors)


def create_app(
    settings: Settings | None = None, numbers_url: str | None = None, *, route_events: bool = True
) -> FastAPI:
    settings = settings or get_settings()
    numbers_url = numbers_url or f"http://{settings.host}:{settings.base_port}"
    hub = Hub(settings, numbers_url, route_events=route_events)

    @asynccontextmanager
    async def lifespan(_app):
        await hub.start()
        yield
        await hub.stop()

    app = FastAPI(
        title="Public Service Mesh hub (公共サービスメッシュ)",
        version="1",
        description="Signed, authorized, audited exchange between agency systems under agency-specific pseudonyms. "
        "Requests are signed with HTTP Message Signatures (RFC 9421, Ed25519); errors are RFC 9457 problems.",
        lifespan=lifespan,
    )
    app.state.hub = hub

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        log.exception("unhandled error")
        return hub.problem(
            Problem("internal-error", "the hub could not complete the request"),
            request,
            request.headers.get("mesh-request-id", ""),
        )

    @app.post(
        "/v1/query",
        response_model=QueryAnswer,
        responses=_PROBLEM_RESPONSES,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": QueryRequest.model_json_schema()}},
            }
        },
    )
    async def query(request: Request):
        """情報照会: one subject's attributes from a provider dataset, for an affair an access rule names."""
        request_id = request.headers.get("mesh-request-id") or uuid.uuid4().hex
        try:
            consumer, req = await _signed_request(hub, request, QueryRequest, settings.max_body_bytes)
            result = await hub.exchange.query(consumer, req, request_id)
        except Problem as problem:
            return hub.problem(problem, request, request_id)
        return hub.answer(200, orjson.dumps(result), request_id, "application/json")

    @app.post(
        "/v1/bulk",
        responses={200: {"content": {ARROW_STREAM: {}}}, **_PROBLEM_RESPONSES},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": BulkRequest.model_json_schema()},
                    ARROW_STREAM: {
                        "schema": {
                            "description": "One string column, subject; provider, dataset, "
                            "attributes and purpose as a JSON object in the schema metadata "
                            "'request'."
                        }
                    },
                },
            }
        },
    )
    async def bulk(request: Request):
        """Bulk query for many subjects; the answer is an Arrow IPC stream, one exchange record naming every
        subject answered."""
        request_id = request.headers.get("mesh-request-id") or uuid.uuid4().hex
        try:
            subjects = None
            if request.headers.get("content-type", "").startswith(ARROW_STREAM):  # subjects as a column
                consumer, body = await _signed_body(hub, request, settings.max_body_bytes * BULK_MAX_BODY)
                try:
                    req, subjects = bulk_wire.read_request(body)
                except bulk_wire.MalformedBulk as exc:
                    raise Problem("malformed-request", str(exc)) from None
                except ValidationError as exc:
                    raise _invalid(exc) from None
            else:
                consumer, req = await _signed_request(hub, request, BulkRequest, settings.max_body_bytes * 64)
            table = await hub.exchange.bulk(consumer, req, request_id, subjects)
        except Problem as problem:
            return hub.problem(problem, request, request_id)
        # encoded and signed beside the event loop: another exchange's work meanwhile runs on the other processor
        return await asyncio.to_thread(
            lambda: hub.answer(200, arrow_ipc.to_body(table, max_chunksize=10_000), request_id, ARROW_STREAM)
        )

    @app.post(
        "/v1/notify",
        responses={200: {"content": {"application/json": {}, ARROW_STREAM: {}}}, **_PROBLEM_RESPONSES},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": NotifyRequest.model_json_schema()},
                    ARROW_STREAM: {
                        "schema": {
                            "description": "Columns subject, key, title_ja, title_en, body_ja, body_en "
                            "and optionally link and category; provider, purpose and service in the "
                            "schema metadata. Answered by a stream with one column, prior_intent."
                        }
                    },
                },
            }
        },
    )
    async def notify(request: Request):
        """Notices to people's inboxes, converted to the inbox holder's pseudonyms; one exchange record naming
        every recipient. JSON for a few, an Arrow IPC stream for a municipality's worth (answered in kind)."""
        request_id = request.headers.get("mesh-request-id") or uuid.uuid4().hex
        try:
            if request.headers.get("content-type", "").startswith(ARROW_STREAM):
                consumer, body = await _signed_body(hub, request, settings.max_body_bytes * 512)  # 500,000 notices
                try:
                    table, routing = notices_wire.read_request(body)
                except notices_wire.MalformedNotices as exc:
                    raise Problem("malformed-request", str(exc)) from None
                flags, delivered = await hub.exchange.notify_table(consumer, routing, table, request_id)
                return hub.answer(200, notices_wire.answer_body(flags, delivered), request_id, ARROW_STREAM)
            consumer, req = await _signed_request(hub, request, NotifyRequest, settings.max_body_bytes * 64)
            result = await hub.exchange.notify(consumer, req, request_id)
        except Problem as problem:
            return hub.problem(problem, request, request_id)
        return hub.answer(200, orjson.dumps(result), request_id, "application/json")

    @app.get("/v1/members")
    async def list_members():
        """Every registered member with its certificate (the trust anchors' view of the mesh)."""
        return [
            {
                "member": str(m.id),
                "status": m.status,
                "title_ja": m.title_ja,
                "title_en": m.title_en,
                "certificate_pem": m.certificate_pem,
            }
            for m in hub.directory.members.values()
        ]

    @app.get("/v1/catalog")
    async def catalog(consumer: str | None = None):
        """Providers, datasets, attributes and, given ``consumer``, what that member may use and for which affair."""
        caller = None
        if consumer:
            try:
                caller = MemberId.parse(consumer)
            except ValueError as exc:
                return Problem("malformed-request", str(exc)).response()
        return await hub.catalog.listing(caller)

    @app.get("/v1/catalog/{member_class}/{code}/{system}/{dataset}/openapi.json")
    async def dataset_openapi(member_class: str, code: str, system: str, dataset: str):
        try:
            return await hub.catalog.openapi(MemberId.parse(f"{member_class}/{code}/{system}"), dataset)
        except (Problem, ValueError) as exc:
            return (exc if isinstance(exc, Problem) else Problem("malformed-request", str(exc))).response()

    @app.get("/v1/rules")
    async def rules():
        """The access rules in force (the mesh's annexed table)."""
        return {
            "rules": [r.__dict__ for r in hub.rules.rules],
            "event_rules": [r.__dict__ for r in hub.rules.event_rules],
        }

    @app.get("/v1/audit/checkpoint")
    async def checkpoint():
        """The latest signed checkpoint (tree size and root) of the exchange record log."""
        cp = await asyncio.to_thread(hub.audit_log.latest_checkpoint)
        if cp is None:
            return {"tree_size": 0}
        return {
            "log_id": cp.log_id,
            "tree_size": cp.tree_size,
            "root": base64.b64encode(cp.root).decode(),
            "timestamp": cp.timestamp,
            "signature": base64.b64encode(cp.signature).decode(),
            "note": cp.note().decode(),
        }

    @app.post("/v1/audit/records", responses=_PROBLEM_RESPONSES)
    async def exchange_records(request: Request):
        """情報提供等記録: one person's exchange records with inclusion proofs against the latest signed checkpoint.

        Only the resident portal may ask, for the person logged in to it (subject under its own pseudonym).
        """
        request_id = request.headers.get("mesh-request-id") or uuid.uuid4().hex
        try:
            consumer, req = await _signed_request(hub, request, RecordsRequest, settings.max_body_bytes)
            result = await hub.exchange.records(consumer, req, hub.audit_log)
        except Problem as problem:
            return hub.problem(problem, request, request_id)
        return hub.answer(200, orjson.dumps(result), request_id, "application/json")

    @app.get("/problems")
    async def problem_types():
        return [
            {"type": t.uri, "status": t.status, "title_ja": t.title_ja, "title_en": t.title_en}
            for t in PROBLEM_TYPES.values()
        ]

    @app.get("/healthz")
    async def health():
        return JSONResponse({"status": "ok", "system": "hub", "members": len(hub.directory.members)})

    async def internal_error(request: Request) -> Response:
        log.exception("unhandled error")
        return hub.problem(
            Problem("internal-error", "the hub could not complete the request"),
            request,
            request.headers.get("mesh-request-id", ""),
        )

    return FastPath(app, {("POST", "/v1/query"): query, ("POST", "/v1/bulk"): bulk}, internal_error)


class FastPath:
    """Sends the exchange routes straight to their handlers, past the framework's middleware stack.

    The same handlers are FastAPI routes too (so /docs and /openapi.json describe them); on the hot
    path the middleware cost ~25% of the hub's CPU per query.
    """

    def __init__(self, app: FastAPI, routes: dict, on_error):
        self.app, self.routes, self.on_error = app, routes, on_error
        self.state = app.state

    async def __call__(self, scope, receive, send):
        handler = self.routes.get((scope.get("method"), scope.get("path"))) if scope["type"] == "http" else None
        if handler is None:
            return await self.app(scope, receive, send)
        request = Request(scope, receive)
        try:
            response = await handler(request)
        except Exception:
            response = await self.on_error(request)
        await response(scope, receive, send)
