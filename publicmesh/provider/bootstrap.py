"""An agency node wired in one place: its state and store, its routes, and its background worker."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy import Engine
from starlette.applications import Starlette

from publicmesh.provider.definition import AgencyDefinition
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
    return Starlette(lifespan=functools.partial(lifespan, node), routes=NodeRoutes(node).routes())


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
