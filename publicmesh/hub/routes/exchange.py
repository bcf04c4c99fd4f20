"""情報照会 over HTTP: one subject's query, a bulk query (JSON or Arrow) and notices to inboxes."""

from __future__ import annotations

import asyncio

import orjson
from fastapi import APIRouter, Request
from pydantic import ValidationError

from publicmesh.design.openapi import SIGNED_ONLY
from publicmesh.hub.deps import Hub
from publicmesh.hub.http import PROBLEM_RESPONSES, invalid, request_id_of
from publicmesh.problems import Problem
from publicmesh.protocol import arrow_ipc, bulk_wire, notices_wire
from publicmesh.protocol.arrow_ipc import ARROW_STREAM
from publicmesh.protocol.schemas import BULK_MAX_BODY, BulkRequest, NotifyRequest, QueryAnswer, QueryRequest

router = APIRouter()


@router.post(
    "/v1/query",
    response_model=QueryAnswer,
    responses=PROBLEM_RESPONSES,
    openapi_extra={
        "security": SIGNED_ONLY,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": QueryRequest.model_json_schema()}},
        },
    },
)
async def query(request: Request, hub: Hub):
    """情報照会: one subject's attributes from a provider dataset, for an affair an access rule names."""
    request_id = request_id_of(request)
    try:
        consumer, req = await hub.http.request(request, QueryRequest, hub.settings.max_body_bytes)
        result = await hub.exchange.query(consumer, req, request_id)
    except Problem as problem:
        hub.metrics.exchanged("query", problem.type.slug)
        return hub.http.problem(problem, request, request_id)
    hub.metrics.exchanged("query", "ok")
    return hub.http.answer(200, orjson.dumps(result), request_id, "application/json")


@router.post(
    "/v1/bulk",
    responses={200: {"content": {ARROW_STREAM: {}}}, **PROBLEM_RESPONSES},
    openapi_extra={
        "security": SIGNED_ONLY,
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
        },
    },
)
async def bulk(request: Request, hub: Hub):
    """Bulk query for many subjects; the answer is an Arrow IPC stream, one exchange record naming every
    subject answered."""
    request_id = request_id_of(request)
    try:
        subjects = None
        if request.headers.get("content-type", "").startswith(ARROW_STREAM):  # subjects as a column
            consumer, body = await hub.http.body(request, hub.settings.max_body_bytes * BULK_MAX_BODY)
            try:
                req, subjects = bulk_wire.read_request(body)
            except bulk_wire.MalformedBulk as exc:
                raise Problem("malformed-request", str(exc)) from None
            except ValidationError as exc:
                raise invalid(exc) from None
        else:
            consumer, req = await hub.http.request(request, BulkRequest, hub.settings.max_body_bytes * 64)
        table = await hub.exchange.bulk(consumer, req, request_id, subjects)
    except Problem as problem:
        hub.metrics.exchanged("bulk", problem.type.slug)
        return hub.http.problem(problem, request, request_id)
    hub.metrics.exchanged("bulk", "ok")
    # encoded and signed beside the event loop: another exchange's work meanwhile runs on the other processor
    return await asyncio.to_thread(
        lambda: hub.http.answer(200, arrow_ipc.to_body(table, max_chunksize=10_000), request_id, ARROW_STREAM)
    )


@router.post(
    "/v1/notify",
    responses={200: {"content": {"application/json": {}, ARROW_STREAM: {}}}, **PROBLEM_RESPONSES},
    openapi_extra={
        "security": SIGNED_ONLY,
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
        },
    },
)
async def notify(request: Request, hub: Hub):
    """Notices to people's inboxes, converted to the inbox holder's pseudonyms; one exchange record naming
    every recipient. JSON for a few, an Arrow IPC stream for a municipality's worth (answered in kind)."""
    request_id = request_id_of(request)
    try:
        if request.headers.get("content-type", "").startswith(ARROW_STREAM):
            consumer, body = await hub.http.body(request, hub.settings.max_body_bytes * 512)  # 500,000 notices
            try:
                table, routing = notices_wire.read_unchecked(body)
            except notices_wire.MalformedNotices as exc:
                raise Problem("malformed-request", str(exc)) from None
            flags, delivered = await hub.exchange.notify_rows(consumer, routing, table, request_id)
            hub.metrics.exchanged("notify", "ok")
            return hub.http.answer(200, notices_wire.answer_body(flags, delivered), request_id, ARROW_STREAM)
        consumer, req = await hub.http.request(request, NotifyRequest, hub.settings.max_body_bytes * 64)
        result = await hub.exchange.notify(consumer, req, request_id)
    except Problem as problem:
        hub.metrics.exchanged("notify", problem.type.slug)
        return hub.http.problem(problem, request, request_id)
    hub.metrics.exchanged("notify", "ok")
    return hub.http.answer(200, orjson.dumps(result), request_id, "application/json")


def fast_routes() -> dict[tuple[str, str], object]:
    """The exchange's hot routes, which app.FastPath calls past the middleware stack: (method, path) → handler."""
    return {("POST", "/v1/query"): query, ("POST", "/v1/bulk"): bulk}
