"""Staff sessions kept in memory: a random id in an HttpOnly cookie, the principal and a CSRF token per session.

In memory on purpose: the console runs as one process per office deployment, and a restart logging staff out
is the safe failure. Idle sessions end after 30 minutes, every session after 10 hours.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

IDLE_S = 30 * 60
ABSOLUTE_S = 10 * 3600


@dataclass
class StaffSession:
    id: str
    username: str
    municipality: str
    roles: frozenset[str]
    csrf: str
    started: float = field(default_factory=time.monotonic)
    seen: float = field(default_factory=time.monotonic)


class StaffSessions:
    def __init__(self, clock=time.monotonic):
        self._by_id: dict[str, StaffSession] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def start(self, principal) -> StaffSession:
        """A fresh id at every login, so an id planted before login is worth nothing."""
        now = self._clock()
        session = StaffSession(
            secrets.token_urlsafe(32),
            principal.username,
            principal.municipality,
            frozenset(principal.roles),
            secrets.token_urlsafe(24),
            now,
            now,
        )
        with self._lock:
            self._by_id = {k: s for k, s in self._by_id.items() if self._alive(s, now)}
            self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> StaffSession | None:
        if not session_id:
            return None
        now = self._clock()
        with self._lock:
            session = self._by_id.get(session_id)
            if session is None:
                return None
            if not self._alive(session, now):
                del self._by_id[session_id]
                return None
            session.seen = now
            return session

    def end(self, session_id: str | None) -> None:
        with self._lock:
            self._by_id.pop(session_id or "", None)

    @staticmethod
    def _alive(session: StaffSession, now: float) -> bool:
        return now - session.seen < IDLE_S and now - session.started < ABSOLUTE_S
