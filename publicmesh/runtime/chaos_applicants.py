"""Residents applying during the fault trials: each demo card holder logs in to the portal (through the proxy) and
applies for every offer of the trials' services as it appears, trying again until the portal acknowledges it (a
303 to the confirmation). Afterwards every acknowledged application must exist exactly once."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import func, select

from publicmesh.runtime.demo import AUTH_PIN, SIGNING_PASSWORD
from publicmesh.runtime.topology import part
from publicmesh.services.store import applications
from publicmesh.settings import Settings
from publicmesh.storage import engine_for

OFFER = re.compile(r'href="/applications/offers/([0-9a-f]+)"')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Applicants:
    """The demo card holders applying; ``acknowledged`` the offers the portal confirmed, ``tries`` all attempts."""

    settings: Settings
    marker: str  # in the titles of the trials' services: only their offers are applied for
    acknowledged: set[str] = field(default_factory=set)
    tries: int = 0
    passes: int = 0  # rounds over every card holder
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        cards = json.loads((Path(self.settings.data_dir) / "demo-cards.json").read_text(encoding="utf-8"))
        people = [c["card_id"] for c in cards if c["relation"] in ("head", "single")]
        clients: dict[str, httpx.Client] = {}
        while not self.stop.wait(0.5):
            for card in people:
                try:
                    client = clients.get(card) or self._login(card)
                    clients[card] = client
                    self._apply_all(client)
                except (httpx.HTTPError, LookupError):
                    clients.pop(card, None)  # a portal replica or a part behind it restarting: log in again later
            self.passes += 1
        for client in clients.values():
            client.close()

    def _login(self, card: str) -> httpx.Client:
        client = httpx.Client(base_url=part(self.settings, "portal").url(self.settings), timeout=30)
        page = client.get("/login").text
        challenge, csrf = re.search(r'name="challenge" value="([^"]+)"', page), CSRF.search(page)
        if challenge is None or csrf is None:
            raise LookupError("no login form")
        data = {"card": card, "pin": AUTH_PIN, "challenge": challenge.group(1), "csrf": csrf.group(1)}
        if client.post("/login", data=data).status_code != 303:
            raise LookupError("login refused")
        return client

    def _apply_all(self, client: httpx.Client) -> None:
        listing = client.get("/applications")
        if listing.status_code != 200:
            raise LookupError("no applications page")
        for offer_id in OFFER.findall(listing.text):
            if offer_id in self.acknowledged:
                continue
            form = client.get(f"/applications/offers/{offer_id}")
            csrf = CSRF.search(form.text)
            if form.status_code != 200 or self.marker not in form.text or csrf is None:
                continue
            self._apply(client, offer_id, csrf.group(1))

    def _apply(self, client: httpx.Client, offer_id: str, csrf: str) -> None:
        """Tried until acknowledged, for up to a minute: a retry after a lost answer is answered as the first."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not self.stop.is_set():
            self.tries += 1
            try:
                answer = client.post(
                    f"/applications/offers/{offer_id}", data={"csrf": csrf, "password": SIGNING_PASSWORD}
                )
                if answer.status_code == 303:
                    self.acknowledged.add(offer_id)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)

    def finish(self, timeout_s: float = 120) -> None:
        """Two more rounds (every offer published so far applied for), then stop."""
        target, deadline = self.passes + 2, time.monotonic() + timeout_s
        while self.passes < target and time.monotonic() < deadline:
            time.sleep(0.2)
        self.stop.set()

    def counted(self) -> dict:
        """Acknowledged applications missing from the services store (lost) and stored more than once."""
        engine = engine_for("services", self.settings)
        with engine.connect() as conn:
            stored = dict(
                conn.execute(select(applications.c.offer_id, func.count()).group_by(applications.c.offer_id)).all()
            )
        engine.dispose()
        return {
            "applications": len(self.acknowledged),
            "lost": sum(1 for o in self.acknowledged if o not in stored),
            "duplicates": sum(max(stored.get(o, 0) - 1, 0) for o in self.acknowledged),
        }
