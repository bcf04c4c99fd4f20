"""Serve one part: ``python -m publicmesh.runtime.serve PART``."""

from __future__ import annotations

import gc
import logging
import sys

import uvicorn

from publicmesh.runtime.catalog import AGENCIES
from publicmesh.runtime.topology import municipalities, part, replica_of
from publicmesh.services.definition import use_catalog
from publicmesh.settings import get_settings

GC_YOUNG = 20_000


def build_app(name: str):
    """The part's ASGI app. Each part's code is imported here, so that a process loads its own part only. A
    replica ("hub-2") runs its part; of the hub's replicas, the first routes events."""
    settings = get_settings()
    name, replica = replica_of(name), name
    if name in ("services", "console"):  # they check definitions against the agencies' datasets
        use_catalog(AGENCIES)
    if name == "numbers":
        from publicmesh.numbers.bootstrap import bootstrap  # noqa: PLC0415 (each process loads its own part only)

        return bootstrap(settings)
    if name == "portal":
        from publicmesh.portal.bootstrap import bootstrap  # noqa: PLC0415  (each process imports its own part only)

        return bootstrap(settings, part(settings, "hub").url(settings))
    if name == "hub":
        from publicmesh.hub.bootstrap import bootstrap  # noqa: PLC0415 (each process loads its own part only)

        return bootstrap(
            settings,
            part(settings, "numbers").url(settings),
            witness_urls=[part(settings, "witness").url(settings)],
            route_events=replica in ("hub", "hub-1"),
        )
    if name == "witness":
        from publicmesh.witness.bootstrap import bootstrap  # noqa: PLC0415 (each process loads its own part only)

        return bootstrap(settings)
    if name == "console":
        from publicmesh.console.bootstrap import bootstrap  # noqa: PLC0415  (each process imports its own part only)

        return bootstrap(settings, part(settings, "hub").url(settings))
    from publicmesh.provider.bootstrap import bootstrap  # noqa: PLC0415 (each process loads its own part only)

    return bootstrap(AGENCIES[name], settings, municipalities())


def tune_gc() -> None:
    """The youngest generation collected every 20,000 new containers instead of 700: a signed query makes many
    short-lived ones, and collecting them took ~3% of the hub's processor time (perf, issue 21). What the part built
    at startup is frozen, out of every collection's way."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG, 20, 20)


def main(argv: list[str]) -> None:
    name = argv[0]
    settings = get_settings()
    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s {name} %(levelname)s %(message)s")
    app = build_app(name)
    tune_gc()
    uvicorn.run(
        app,
        host=settings.host,
        port=part(settings, name).port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=5,
        # Longer than the hub's client keeps idle connections (60 s): otherwise the server may close one
        # just as the client reuses it, and a request fails with a reset connection.
        timeout_keep_alive=75,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
