"""What the person's browser needs to catch a log cut back or rewritten between two visits: the checkpoint a witness
cosigned, and consistency proofs from the checkpoint it kept to today's (checked by /static/consistency.js)."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from publicmesh.audit.checkpoint import Checkpoint
from publicmesh.audit.cosignature import Cosignature
from publicmesh.audit.keys import load_witness_public_key
from publicmesh.portal.core import Portal
from publicmesh.portal.deps import CurrentSession, PortalDep
from publicmesh.problems import Problem

log = logging.getLogger(__name__)
router = APIRouter()
MAX_SIZE = 2**63 - 1


@lru_cache(maxsize=4)
def _witness_key(keys_dir: Path) -> Ed25519PublicKey:
    return load_witness_public_key(keys_dir)  # a missing key raises, and is not cached: tried again next time


async def witnessed(portal: Portal) -> dict | None:
    """The largest checkpoint a witness cosigned, for the page, if the log signed it and the mesh's witness did."""
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            answer = await client.get(portal.hub_url + "/v1/audit/witnessed")
        if answer.status_code != 200:
            return None
        doc = answer.json()
        checkpoint = Checkpoint.from_dict(doc["checkpoint"])
        cosignatures = [Cosignature.from_dict(c) for c in doc["cosignatures"]]
        key = _witness_key(portal.settings.keys_dir)
    except (httpx.HTTPError, ValueError, KeyError, TypeError, OSError) as exc:
        log.warning("no witnessed checkpoint to show: %s", exc)
        return None
    if not checkpoint.verify(portal.audit_key):
        return None
    cosignature = next((c for c in cosignatures if c.verify(key, checkpoint)), None)
    if cosignature is None:
        return None
    return {
        "witness": cosignature.witness,
        "size": checkpoint.tree_size,
        "root": base64.b64encode(checkpoint.root).decode("ascii"),
        "cosigned_at": datetime.fromtimestamp(cosignature.cosigned_at, UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cosignature": base64.b64encode(cosignature.signature).decode("ascii"),
    }


@router.get("/records/consistency")
async def consistency(
    session: CurrentSession,
    portal: PortalDep,
    old_size: Annotated[int, Query(alias="from", ge=0, le=MAX_SIZE)],
    new_size: Annotated[int, Query(alias="to", ge=0, le=MAX_SIZE)],
) -> Response:
    """RFC 9162 consistency proof from size ``from`` to size ``to`` of the exchange record log, asked of the hub."""
    if session is None:
        return Problem("not-found", "log in to check the log").response("/records/consistency")
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.get(
                portal.hub_url + "/v1/audit/consistency", params={"from": old_size, "to": new_size}
            )
    except httpx.HTTPError as exc:
        return Problem("provider-unavailable", f"the hub is not reachable: {exc}").response("/records/consistency")
    if answer.status_code != 200:
        return Response(answer.content, answer.status_code, media_type="application/problem+json")
    doc = answer.json()
    return JSONResponse({"from": doc["from"], "to": doc["to"], "proof": doc["proof"]})
