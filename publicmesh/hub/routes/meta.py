"""What the hub says about itself: the problem types it answers with, and whether it is up."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from publicmesh.hub.deps import Hub
from publicmesh.problems import PROBLEM_TYPES

router = APIRouter()


@router.get("/problems")
async def problem_types():
    return [
        {"type": t.uri, "status": t.status, "title_ja": t.title_ja, "title_en": t.title_en}
        for t in PROBLEM_TYPES.values()
    ]


@router.get("/healthz")
async def health(hub: Hub):
    return JSONResponse({"status": "ok", "system": "hub", "members": len(hub.directory.members)})
