"""Live application status for the person's open pages (server-sent events), fed by the hub's events."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from contextlib import contextmanager


class StatusFeed:
    def __init__(self):
        self._listeners: dict[str, set[asyncio.Queue]] = defaultdict(set)

    def publish(self, person_ref: str, update: dict) -> None:
        for queue in list(self._listeners.get(person_ref, ())):
            queue.put_nowait(update)

    @contextmanager
    def subscribe(self, person_ref: str):
        queue: asyncio.Queue = asyncio.Queue(maxsize=100)
        self._listeners[person_ref].add(queue)
        try:
            yield queue
        finally:
            self._listeners[person_ref].discard(queue)
            if not self._listeners[person_ref]:
                del self._listeners[person_ref]
