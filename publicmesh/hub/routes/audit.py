"""The exchange record log (情報提供等記録) over HTTP: its signed checkpoint, and a person's own records."""

from __future__ import annotations

import asyncio
import base64

import orjson
from fastapi import APIRouter, Request

from publicmesh.design.openapi import SIGNED_ONLY
from publicmesh.hub.deps import Hub
from publicmesh.hub.http import PROBLEM_RESPONSES, request_id_of
from publicmesh.problems import Problem
from publicmesh.protocol.schemas import RecordsRequest

router = APIRouter()


@router.get("/v1/audit/checkpoint")
async def checkpoint(hub: Hub):
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


@router.post(
    "/v1/audit/records",
    responses=PROBLEM_RESPONSES,
    openapi_extra={
        "security": SIGNED_ONLY,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": RecordsRequest.model_json_schema()}},
        },
    },
)
async def exchange_records(request: Request, hub: Hub):
    """情報提供等記録: one person's exchange records with inclusion proofs against the latest signed checkpoint.

    Only the resident portal may ask, for the person logged in to it (subject under its own pseudonym).
    """
    request_id = request_id_of(request)
    try:
        consumer, req = await hub.http.request(request, RecordsRequest, hub.settings.max_body_bytes)
        result = await hub.exchange.records(consumer, req, hub.audit_log)
    except Problem as problem:
        return hub.http.problem(problem, request, request_id)
    return hub.http.answer(200, orjson.dumps(result), request_id, "application/json")
