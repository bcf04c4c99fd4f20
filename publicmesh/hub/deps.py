"""What the hub's routes depend on, given to them as one typed FastAPI dependency (built by hub.bootstrap)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from publicmesh.audit import AsyncAuditAppender, AuditLog
from publicmesh.hub.catalog import Catalog
from publicmesh.hub.events import EventRouter
from publicmesh.hub.exchange import Exchange
from publicmesh.hub.http import SignedHttp
from publicmesh.hub.registry import Directory
from publicmesh.hub.rules import RuleBook
from publicmesh.hub.witnessing import Witnesses
from publicmesh.protocol.outbound import Outbound
from publicmesh.settings import Settings


@dataclass
class HubDeps:
    """Everything the hub process holds; ``outbound``, ``audit`` and ``events`` run between startup and shutdown."""

    settings: Settings
    http: SignedHttp
    directory: Directory
    rules: RuleBook
    catalog: Catalog
    exchange: Exchange
    audit_log: AuditLog
    audit: AsyncAuditAppender
    outbound: Outbound
    events: EventRouter | None
    witnesses: Witnesses | None = None


def hub_deps(request: Request) -> HubDeps:
    """The dependency routes declare; a test overrides it (app.dependency_overrides) to hand routes fakes."""
    return request.app.state.hub


Hub = Annotated[HubDeps, Depends(hub_deps)]
