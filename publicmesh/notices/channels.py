"""Channels that reach a person outside the portal (email, SMS); the embedded default only logs to a file.

A real SMTP or SMS-gateway channel is out of scope here: it would implement ``Channel.send`` the same way.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from publicmesh.notices.model import to_text, utc_now
from publicmesh.settings import Settings, get_settings
from publicmesh.storage.private import private_dir

OUTBOX_FILE = "outbox-mail.jsonl"


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One email or SMS to send."""

    kind: str  # "email" | "sms"
    to: str
    subject: str
    body: str
    reference: str  # the notice or verification code id, for tracing a complaint back


class Channel(Protocol):
    """Sends email and SMS; raises on failure so the caller can record it."""

    def send(self, message: OutgoingMessage) -> None: ...


class LogChannel:
    """Appends every outgoing message to a JSON-lines file (data_dir/outbox-mail.jsonl) instead of sending it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Settings | None = None) -> LogChannel:
        return cls((settings or get_settings()).data_dir / OUTBOX_FILE)

    def send(self, message: OutgoingMessage) -> None:
        line = json.dumps({"at": to_text(utc_now()), **asdict(message)}, ensure_ascii=False) + "\n"
        private_dir(self.path.parent)
        with self._lock:
            # Owner-only: the file holds verification codes and addresses.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as out:
                out.write(line)

    def messages(self) -> list[dict[str, str]]:
        """Everything logged so far (for the demo's mail viewer and for tests)."""
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]
