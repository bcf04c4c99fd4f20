"""``publicmesh bench portal``: server time of a card login and of わたしの情報, and hub exchanges per page view."""

from __future__ import annotations

import json
import re
import statistics
import tempfile
from pathlib import Path

import httpx
from sqlalchemy import text

from publicmesh.runtime.provision import provision
from publicmesh.runtime.seed import seed
from publicmesh.runtime.supervisor import Supervisor
from publicmesh.runtime.topology import municipalities, part
from publicmesh.settings import Settings
from publicmesh.storage import engine_for


def _server_ms(response: httpx.Response) -> float:
    return float(re.search(r"dur=([0-9.]+)", response.headers["server-timing"]).group(1))


def _summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1], 2),
        "runs": len(ordered),
    }


def _audit_size(settings: Settings) -> int:
    engine = engine_for("audit", settings)
    with engine.connect() as conn:
        size = conn.execute(text("SELECT COUNT(*) FROM audit_records")).scalar()
    engine.dispose()
    return size


def _queries_since(settings: Settings, position: int) -> int:
    """Hub queries (distinct request ids) recorded since ``position``."""
    engine = engine_for("audit", settings)
    with engine.connect() as conn:
        count = conn.execute(
            text("SELECT COUNT(DISTINCT request_id) FROM audit_records WHERE position >= :p"), {"p": position}
        ).scalar()
    engine.dispose()
    return count


def run(runs: int = 200, residents: int = 20_000, progress=None) -> dict:
    say = progress or (lambda *_: None)
    with tempfile.TemporaryDirectory(prefix="publicmesh-portal-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp), base_port=8950)
        provision(settings)
        seed(settings, residents, municipalities(), 5)
        cards = json.loads((settings.data_dir / "demo-cards.json").read_text(encoding="utf-8"))
        with Supervisor(settings) as supervisor:
            supervisor.start()
            url = part(settings, "portal").url(settings)
            logins, pages, exchanges, queries = [], [], [], []
            say(f"{runs} card logins and {runs} views of わたしの情報")
            for i in range(runs):
                with httpx.Client(base_url=url, follow_redirects=False, timeout=30) as client:
                    page = client.get("/login")
                    challenge = re.search(r'name="challenge" value="([^"]+)"', page.text).group(1)
                    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
                    card = cards[i % len(cards)]["card_id"]
                    done = client.post(
                        "/login", data={"card": card, "pin": "1234", "challenge": challenge, "csrf": csrf}
                    )
                    assert done.status_code == 303, done.text
                    logins.append(_server_ms(page) + _server_ms(done))
                    before = _audit_size(settings) if i < 5 else None
                    view = client.get("/me")
                    assert view.status_code == 200
                    pages.append(_server_ms(view))
                    if before is not None:
                        exchanges.append(_audit_size(settings) - before)
                        queries.append(_queries_since(settings, before))
    return {
        "login": _summary(logins),
        "my_information": _summary(pages),
        "hub_queries_per_view": queries,
        "audit_records_per_view": exchanges,
    }
