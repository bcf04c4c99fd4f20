"""The resident portal in a real browser: a whole mesh on SQLite (base port 9400) driven by Debian's chromium.

Needs /usr/bin/chromium and a CJK font (``bash scripts/browser-deps.sh``); never ``playwright install``.
Without chromium the tests are skipped, unless CI is set, where that is a failure. Screenshots, at phone
size, go to ``screenshots/`` at the repository root (gitignored).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from publicmesh.bench.browser import CHROMIUM, MISSING, PHONE, launch
from publicmesh.runtime.provision import provision
from publicmesh.runtime.seed import fresh_stores, seed
from publicmesh.runtime.supervisor import Supervisor
from publicmesh.runtime.topology import municipalities, part
from publicmesh.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "screenshots"
# tests/integration uses 9100 and 9200; another port lets a trial run beside the suite's.
BASE_PORT = int(os.environ.get("PUBLICMESH_BROWSER_BASE_PORT", "9400"))
RESIDENTS = 3000
SEED = 11
TIMEOUT_MS = 15_000


@dataclass(frozen=True)
class DemoCard:
    """One line of data_dir/demo-cards.json: 中村 香織（ナカムラ カオリ）."""

    card_id: str
    label: str
    relation: str

    @property
    def name(self) -> str:
        return self.label.split("（")[0]

    @property
    def family_name(self) -> str:
        return self.name.split()[0]

    @property
    def given_name(self) -> str:
        return self.name.split()[-1]


class RunningPortal:
    def __init__(self, settings: Settings, supervisor: Supervisor):
        self.settings, self.supervisor = settings, supervisor
        self.url = part(settings, "portal").url(settings)
        self.hub_url = part(settings, "hub").url(settings)
        doc = json.loads((settings.data_dir / "demo-cards.json").read_text(encoding="utf-8"))
        self.cards = [DemoCard(c["card_id"], c["label"], c["relation"]) for c in doc]


@pytest.fixture(scope="session")
def portal(tmp_path_factory) -> RunningPortal:
    """Provisioned, seeded (demo cards included) and running, every part its own process, on SQLite only."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("browser-mesh"), base_port=BASE_PORT, database_url="")
    fresh_stores(settings)
    provision(settings)
    seed(settings, RESIDENTS, municipalities(), SEED)
    # The parts read their settings from the environment: make sure a PostgreSQL URL exported for other
    # tests (scripts/postgres.sh) does not reach them.
    supervisor = Supervisor(settings, env={"PUBLICMESH_DATABASE_URL": ""})
    try:
        supervisor.start()
        running = RunningPortal(settings, supervisor)
        assert len(running.cards) >= 8, f"seeding issued only {len(running.cards)} demo cards"
        yield running
    finally:
        supervisor.stop()


# Module scope: Playwright's sync API keeps an event loop running in this thread while it is open, which
# would break every later test that calls asyncio.run().
@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        reason = f"the browser tests {MISSING}"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = launch(p)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def phone(browser, portal):
    """``phone()`` opens a fresh phone-sized browser context (its own cookies and IndexedDB) on the portal."""
    contexts = []

    def open_phone():
        context = browser.new_context(base_url=portal.url, **PHONE)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_phone
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def shot():
    """``shot(page, name)`` saves a full-page screenshot to screenshots/NAME.png.

    It also checks the page fits the phone's width: nothing but the tab bar (which scrolls by design) may
    make the page scroll sideways.
    """
    SCREENSHOTS.mkdir(exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
        page.screenshot(path=str(path), full_page=True)
        width, viewport = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width <= viewport, f"{page.url} is {width} px wide on a {viewport} px phone screen (see {path})"
        return path

    return take
