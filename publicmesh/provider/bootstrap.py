"""An agency node wired in one place: its state and store, its routes, and its background worker."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy import Engine
from starlette.applications import Starlette

from publicmesh.design.observability import observe, present, store_answers
from publicmesh.provider.definition import AgencyDefinition
from publicmesh.provider.messaging import outbox_depth
from publicmesh.provider.node import AgencyNode
from publicmesh.provider.routes import NodeRoutes
from publicmesh.settings import Settings


def bootstrap(
    agency: AgencyDefinition, settings: Settings, municipalities: Sequence[str], engine: Engine | None = None
) -> Starlette:
    """The node's ASGI app for the members it serves in ``municipalities``."""
    return create_app(AgencyNode(agency, settings, municipalities, engine))


def create_app(node: AgencyNode) -> Starlette:
    """The app of a node already built (a test's, on its own engine)."""
    app = Starlette(lifespan=functools.partial(lifespan, node), routes=NodeRoutes(node).routes())
    checks = [("store", store_answers(node.engine)), ("keys", present(*node.signers.values()))]
    metrics = observe(app, node.agency.system, checks)
    metrics.gauge(
        "publicmesh_outbox_depth",
        "Events in the node's outbox after the hub's last cursor (not yet taken by the hub)",
        lambda: outbox_depth(node.engine, node.agency.outbox, node.outbox_cursor),
    )
    return app


@asynccontextmanager
async def lifespan(node: AgencyNode, _app: Starlette) -> AsyncIterator[None]:
    """Runs the agency's worker, if it has one, while the node serves."""
    worker = node.agency.worker(node.engine, node.settings) if node.agency.worker else None
    if worker:
        worker.start()
    try:
        yield
    finally:
        if worker:
            worker.stop()
