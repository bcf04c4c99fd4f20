"""The exchange record log (情報提供等記録) over HTTP: its signed checkpoint, and a person's own records."""

from __future__ import annotations

import asyncio
import base64
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request

from publicmesh.design.openapi import SIGNED_ONLY
from publicmesh.hub.deps import Hub
from publicmesh.hub.http import PROBLEM_RESPONSES, request_id_of
from publicmesh.problems import Problem
from publicmesh.protocol.schemas import RecordsRequest

router = APIRouter()
MAX_SIZE = 2**63 - 1


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


@router.get("/v1/audit/consistency", responses=PROBLEM_RESPONSES)
async def consistency(
    hub: Hub,
    old_size: Annotated[int, Query(alias="from", ge=0, le=MAX_SIZE)],
    new_size: Annotated[int | None, Query(alias="to", ge=0, le=MAX_SIZE)] = None,
):
    """RFC 9162 consistency proof from size ``from`` to size ``to`` (default: the latest checkpoint's), and the
    signed checkpoint at ``to``: whoever kept an earlier checkpoint checks the log only grew since."""

    def work():
        target = hub.audit_log.latest_checkpoint() if new_size is None else hub.audit_log.checkpoint(new_size)
        if target is None:
            raise Problem("not-found", f"the log has no signed checkpoint at size {new_size}")
        if old_size > target.tree_size:
            raise Problem("invalid-request", f"size {old_size} is beyond the checkpoint's size {target.tree_size}")
        return target, hub.audit_log.consistency_proof(old_size, target.tree_size)

    try:
        target, proof = await asyncio.to_thread(work)
    except Problem as problem:
        return problem.response()
    return {
        "from": old_size,
        "to": target.tree_size,
        "proof": [base64.b64encode(h).decode() for h in proof],
        "checkpoint": target.as_dict(),
    }


@router.get("/v1/audit/witnessed", responses=PROBLEM_RESPONSES)
async def witnessed(hub: Hub):
    """The largest checkpoint the witnesses cosigned, with their cosignatures, as the hub received them."""
    found = await asyncio.to_thread(hub.audit_log.latest_witnessed)
    if found is None:
        return Problem("not-found", "no checkpoint has been cosigned by a witness yet").response()
    checkpoint, cosignatures = found
    return {"checkpoint": checkpoint.as_dict(), "cosignatures": [c.as_dict() for c in cosignatures]}


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
