"""What the hub says about itself: the problem types it answers with (health and metrics: design.observability)."""

from __future__ import annotations

from fastapi import APIRouter

from publicmesh.problems import PROBLEM_TYPES

router = APIRouter()


@router.get("/problems")
async def problem_types():
    return [
        {"type": t.uri, "status": t.status, "title_ja": t.title_ja, "title_en": t.title_en}
        for t in PROBLEM_TYPES.values()
    ]
