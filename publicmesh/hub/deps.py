"""What the hub's routes depend on, given to them as one typed FastAPI dependency (built by hub.bootstrap)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from publicmesh.audit import AsyncAuditAppender, AuditLog
from publicmesh.design.observability import PartMetrics
from publicmesh.hub.catalog import Catalog
from publicmesh.hub.events import EventRouter
from publicmesh.hub.exchange import RULE, Exchange
from publicmesh.hub.http import SignedHttp
from publicmesh.hub.registry import Directory
from publicmesh.hub.rules import RuleBook
from publicmesh.hub.witnessing import Witnesses
from publicmesh.protocol.outbound import Outbound
from publicmesh.settings import Settings


class HubMetrics(PartMetrics):
    """The hub's metrics: its requests (as every part's), its exchanges by kind, access rule and outcome."""

    def __init__(self) -> None:
        super().__init__("hub")
        self.exchanges = self.counter(
            "publicmesh_hub_exchanges",
            "Exchanges asked of the hub, by kind, access rule (none before one allowed it) and outcome (ok or the "
            "problem type)",
            ["kind", "rule", "outcome"],
        )
        self._exchange_children: dict[tuple[str, str, str], Any] = {}

    def exchanged(self, kind: str, outcome: str) -> None:
        """Counts an exchange of the current request, under the rule Exchange._authorize found for it."""
        key = (kind, RULE.get(), outcome)
        child = self._exchange_children.get(key)
        if child is None:
            child = self._exchange_children[key] = self.exchanges.labels(*key)
        child.inc()


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
    metrics: HubMetrics = field(default_factory=HubMetrics)


def hub_deps(request: Request) -> HubDeps:
    """The dependency routes declare; a test overrides it (app.dependency_overrides) to hand routes fakes."""
    return request.app.state.hub


Hub = Annotated[HubDeps, Depends(hub_deps)]
