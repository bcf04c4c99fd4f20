"""A node's HTTP face: each route authenticates the hub's signed request, runs the node's answer, signs it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from publicmesh.design.openapi import Schema, document, json_answer, json_body, openapi_routes, problems
from publicmesh.design.openapi import signed_operation as signed
from publicmesh.problems import Problem
from publicmesh.protocol import bulk_wire
from publicmesh.protocol.members import InvalidMemberId
from publicmesh.protocol.schemas import BULK_MAX_SUBJECTS
from publicmesh.protocol.signatures import SignatureError
from publicmesh.provider import node as answers
from publicmesh.provider.node import ARROW_STREAM, AgencyNode, Answer

log = logging.getLogger(__name__)


class NodeRoutes:
    """The routes of one node; the work of each is a function of node.py, run in a thread."""

    def __init__(self, node: AgencyNode):
        self.node = node

    def routes(self) -> list[Route]:
        return [
            Route("/v1/datasets", self.datasets),
            Route("/v1/query", self.query, methods=["POST"]),
            Route("/v1/bulk", self.bulk, methods=["POST"]),
            Route("/v1/outbox", self.outbox, methods=["POST"]),
            Route("/v1/events", self.events, methods=["POST"]),
            *openapi_routes(lambda: openapi(self.node)),
        ]

    async def datasets(self, _request: Request) -> Response:
        return JSONResponse(answers.describe(self.node))

    async def query(self, request: Request) -> Response:
        return await self._signed(request, answers.query)

    async def bulk(self, request: Request) -> Response:
        return await self._signed(request, answers.bulk)

    async def outbox(self, request: Request) -> Response:
        return await self._signed(request, answers.outbox)

    async def events(self, request: Request) -> Response:
        return await self._signed(request, answers.accept_events)

    async def _signed(self, request: Request, work: Callable[[AgencyNode, dict], Answer]) -> Response:
        """Authenticates the caller, reads its JSON or Arrow body, answers ``work(node, doc)`` signed by the member."""
        node = self.node
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
            if answers.on_the_loop(work, doc):
                status, payload, media = work(node, doc)
            else:
                # In a thread: a list asked while a scan is read (a municipality's names for its forms while the
                # next is scanned) is answered meanwhile, by another SQLite reader, instead of after it.
                status, payload, media = await asyncio.to_thread(work, node, doc)
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
            malformed = Problem("malformed-request", f"{type(exc).__name__}: {exc}")
            return node.signed(
                next(iter(node.members)), request_id, 400, malformed.body(request_id), "application/problem+json"
            )
        except Exception:  # answered here, signed, as a problem: uvicorn would close the kept-alive connection
            log.exception("%s: unhandled error on %s", node.agency.system, request.url.path)
            failed = Problem("internal-error", f"{node.agency.system} could not answer")
            return node.signed(
                next(iter(node.members)), request_id, 500, failed.body(request_id), "application/problem+json"
            )
        return node.signed(member, request_id, status, payload, media)


def openapi(node: AgencyNode) -> Schema:
    """The node's OpenAPI document: its members and datasets named, every route but /v1/datasets and the health
    and metrics routes taking the hub's signed requests only."""
    agency = node.agency
    members = {"type": "string", "enum": sorted(node.members), "description": "The member the request is for"}
    datasets = {"type": "string", "enum": sorted(agency.datasets)}
    names = sorted({a.name for d in agency.datasets.values() for a in d.attributes})
    attributes = {
        "type": "array",
        "items": {"type": "string", "enum": names},
        "description": "The attributes asked for (all of the dataset's when absent or empty)",
    }
    subject = {"type": "string", "maxLength": 64, "description": "The subject under this agency's pseudonym"}
    query = {
        "type": "object",
        "required": ["member", "dataset", "subject"],
        "properties": {
            "member": members,
            "dataset": datasets,
            "subject": subject,
            "attributes": attributes,
            "payload": {"type": "object", "description": "A submission the hub authorised under a write rule"},
        },
    }
    bulk = {
        "type": "object",
        "required": ["member", "dataset"],
        "properties": {
            "member": members,
            "dataset": datasets,
            "attributes": attributes,
            "subjects": {"type": "array", "items": subject, "maxItems": BULK_MAX_SUBJECTS},
            "scan": {"type": "boolean", "description": "Every subject of the member's municipality"},
        },
        "description": "Either subjects, or scan: true",
    }
    outbox = {
        "type": "object",
        "properties": {
            "after": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1, "description": "The hub's cursor"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 5000},
        },
    }
    event = {
        "type": "object",
        "required": ["idempotency_key", "member", "source", "type", "subject", "data", "occurred_at"],
        "properties": {
            "idempotency_key": {"type": "string", "maxLength": 128},
            "member": members,
            "source": {"type": "string", "maxLength": 64, "description": "The member the event comes from"},
            "type": {"type": "string", "maxLength": 32, "examples": sorted(agency.handlers) or ["birth"]},
            "subject": {"type": "string", "maxLength": 32},
            "data": {"type": "object"},
            "occurred_at": {"type": "string", "format": "date-time"},
        },
    }
    events = {"type": "object", "required": ["events"], "properties": {"events": {"type": "array", "items": event}}}
    arrow = {
        "type": "string",
        "contentMediaType": ARROW_STREAM,
        "description": "One string column, subject; the other fields as JSON in the schema metadata",
    }
    bulk_doc = signed(
        "Many subjects' attributes, or a scan of a municipality, as an Arrow IPC stream",
        {"required": True, "content": {"application/json": {"schema": bulk}, ARROW_STREAM: {"schema": arrow}}},
        {
            "200": {
                "description": 'The rows found; column "i" is the position of the subject asked',
                "content": {ARROW_STREAM: {"schema": {"type": "string", "contentMediaType": ARROW_STREAM}}},
            }
        },
    )
    answer = {"type": "object", "properties": {"subject": {"type": "string"}, "data": {"type": "object"}}}
    paths = {
        "/v1/datasets": {"get": {"summary": "The node's catalog entry", "responses": {"200": json_answer("", {})}}},
        "/v1/query": {
            "post": signed(
                "One subject's attributes, or a submission",
                json_body(query),
                {"200": json_answer("", answer), **problems(422)},
                description="A submission (payload) is taken only by a dataset with a writer; one it refuses is a "
                "422 problem (submission-refused).",
            )
        },
        "/v1/bulk": {"post": bulk_doc},
        "/v1/outbox": {
            "post": signed(
                "The events after the hub's cursor, for it to route",
                json_body(outbox),
                {"200": json_answer("The events", {"type": "object", "required": ["events"]})},
            )
        },
        "/v1/events": {
            "post": signed(
                "Events the hub delivers, each taken once by its idempotency key",
                json_body(events),
                {"200": json_answer("How many were new", {"type": "object", "required": ["accepted", "duplicates"]})},
            )
        },
    }
    return document(
        f"Public Service Mesh agency node: {agency.title_ja} ({agency.title_en})",
        f"The {agency.system} node; it answers the hub only (MESH/0000000/hub), signed requests only (RFC 9421), "
        "and signs its answers; errors are RFC 9457 problems.",
        paths,
    )
