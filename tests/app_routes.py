"""An app's routes as (method, path) in the order they are matched, mounts as ("MOUNT", path)."""

from __future__ import annotations

import fastapi.routing
from starlette.routing import Mount


def app_routes(app) -> list[tuple[str, str]]:
    # Newer FastAPI keeps an included router as one entry of app.routes; iter_route_contexts flattens it.
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = [c.original_route for c in contexts(app.routes)] if contexts else list(app.routes)
    found = []
    for route in routes:
        if isinstance(route, Mount):
            found.append(("MOUNT", route.path))
        else:
            found.extend((method, route.path) for method in sorted(route.methods))
    return found
