"""The mesh as members see it: who is registered, what each provider publishes, and the access rules in force."""

from __future__ import annotations

from fastapi import APIRouter

from publicmesh.hub.deps import Hub
from publicmesh.hub.http import PROBLEM_RESPONSES
from publicmesh.problems import Problem
from publicmesh.protocol.members import MemberId

router = APIRouter()


@router.get("/v1/members")
async def list_members(hub: Hub):
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


@router.get("/v1/catalog", responses={400: PROBLEM_RESPONSES[400]})
async def catalog(hub: Hub, consumer: str | None = None):
    """Providers, datasets, attributes and, given ``consumer``, what that member may use and for which affair."""
    caller = None
    if consumer:
        try:
            caller = MemberId.parse(consumer)
        except ValueError as exc:
            return Problem("malformed-request", str(exc)).response()
    return await hub.catalog.listing(caller)


@router.get(
    "/v1/catalog/{member_class}/{code}/{system}/{dataset}/openapi.json",
    responses={s: PROBLEM_RESPONSES[s] for s in (400, 404)},
)
async def dataset_openapi(member_class: str, code: str, system: str, dataset: str, hub: Hub):
    try:
        return await hub.catalog.openapi(MemberId.parse(f"{member_class}/{code}/{system}"), dataset)
    except (Problem, ValueError) as exc:
        return (exc if isinstance(exc, Problem) else Problem("malformed-request", str(exc))).response()


@router.get("/v1/rules")
async def rules(hub: Hub):
    """The access rules in force (the mesh's annexed table)."""
    return {
        "rules": [r.__dict__ for r in hub.rules.rules],
        "event_rules": [r.__dict__ for r in hub.rules.event_rules],
    }
