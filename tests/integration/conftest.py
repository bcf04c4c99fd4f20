"""A whole mesh — every part its own process — on SQLite, and again on PostgreSQL when available."""

from __future__ import annotations

import os
import re

import httpx
import pytest
from backends import BACKENDS, DATABASE_URL, require

from publicmesh.protocol.client import MeshClient
from publicmesh.runtime.provision import provision
from publicmesh.runtime.seed import fresh_stores, seed
from publicmesh.runtime.supervisor import Supervisor
from publicmesh.runtime.topology import municipalities, part
from publicmesh.settings import Settings

# The hub keeps a scan's conversions for the next exchange about the same residents only above a size municipalities
# reach; here it does for these small ones too, so that the tests take the path publishing takes.
os.environ.setdefault("PUBLICMESH_HUB_KEEPS_OVER", "50")

TEST_RESIDENTS = 4000


class RunningMesh:
    def __init__(self, settings: Settings, supervisor: Supervisor, backend: str):
        self.settings, self.supervisor, self.backend = settings, supervisor, backend

    def url(self, name: str) -> str:
        return part(self.settings, name).url(self.settings)

    residents = TEST_RESIDENTS

    def client(self, member: str) -> MeshClient:
        return MeshClient.for_member(self.settings, member, self.url("hub"))

    def rows(self, store: str, query) -> list:
        """The rows of a query on one part's store (tests look at stores; parts never do)."""
        from publicmesh.storage import engine_for

        engine = engine_for(store, self.settings)
        try:
            with engine.connect() as conn:
                return conn.execute(query).all()
        finally:
            engine.dispose()

    def portal_login(self, card_id: str) -> httpx.Client:
        """A browser-like client of the resident portal, logged in with the card and the demo PIN."""
        client = httpx.Client(base_url=self.url("portal"), follow_redirects=False, timeout=30)
        page = client.get("/login").text
        challenge = re.search(r'name="challenge" value="([^"]+)"', page).group(1)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        logged_in = client.post("/login", data={"card": card_id, "pin": "1234", "challenge": challenge, "csrf": csrf})
        assert logged_in.status_code == 303, logged_in.text
        return client

    @staticmethod
    def wait_for(check, timeout_s: float = 60.0):
        """``check()``'s first truthy answer, polled every 0.2 s (parts work asynchronously)."""
        import time

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(0.2)
        raise AssertionError("timed out waiting")

    def audit_size(self, consumer: str | None = None, since: int = 0) -> int:
        """How many exchange records the hub's audit log holds (of one consumer's exchanges, from position
        ``since`` on: other parts' events and notices may be recorded while a test runs)."""
        from sqlalchemy import func, select

        from publicmesh.audit.schema import records

        query = select(func.count()).select_from(records).where(records.c.position >= since)
        if consumer is not None:
            query = query.where(records.c.consumer == consumer)
        return self.rows("audit", query)[0][0]

    def enrol_newborn(self, municipality: str = "012084") -> str:
        """The registry asks the number service for a newborn's pseudonym, as a signed member call."""
        from births import enrol_newborn

        return enrol_newborn(self.settings, self.url("numbers"), municipality)


@pytest.fixture(scope="session", params=BACKENDS)
def mesh(request, tmp_path_factory):
    """Provisioned, seeded and running; the PostgreSQL mesh has its own ports and databases."""
    backend = require(request.param)
    settings = Settings(
        data_dir=tmp_path_factory.mktemp(f"mesh-{backend}"),
        database_url=DATABASE_URL if backend == "postgresql" else "",
        base_port=int(os.environ.get("PUBLICMESH_TEST_BASE_PORT", 9100)) + (0 if backend == "sqlite" else 100),
    )
    fresh_stores(settings)
    provision(settings)
    seed(settings, TEST_RESIDENTS, municipalities(), 11)
    supervisor = Supervisor(settings)
    try:
        supervisor.start()
        yield RunningMesh(settings, supervisor, backend)
    finally:
        supervisor.stop()


class People:
    """Picks real subjects the way a clerk would: from one agency's own store, converted by the number service."""

    def __init__(self, mesh: RunningMesh):
        from publicmesh.numbers.keys import load_or_create_master
        from publicmesh.numbers.pseudonyms import PseudonymService

        self.mesh = mesh
        self.numbers = PseudonymService(load_or_create_master(mesh.settings.keys_dir))

    def registry(self, tenant: str = "012084", where=None, limit: int = 50) -> list[str]:
        from sqlalchemy import select

        from publicmesh.agencies.resident_registry import residents
        from publicmesh.storage import engine_for

        query = select(residents.c.pseudonym).where(residents.c.tenant == tenant)
        if where is not None:
            query = query.where(where)
        engine = engine_for("resident-registry", self.mesh.settings)
        with engine.connect() as conn:
            found = [r.pseudonym for r in conn.execute(query.order_by(residents.c.pseudonym).limit(limit))]
        engine.dispose()
        return found

    def convert(self, pseudonyms: list[str], source: str, target: str) -> list[str]:
        return self.numbers.convert(pseudonyms, source, [target])[target]


@pytest.fixture(scope="session")
def people(mesh) -> People:
    return People(mesh)


LOG_LINES = 40  # of each part's warnings and errors, shown with a failing test


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test on a running mesh shows the parts' last warnings and errors: the reason a part refused or
    failed is in its log, not in the HTTP answer the test saw."""
    report = yield
    running = item.funcargs.get("mesh") if hasattr(item, "funcargs") else None
    if report.failed and call.when == "call" and isinstance(running, RunningMesh):
        for log in sorted(running.supervisor.log_dir.glob("*.log")):
            lines = [
                line
                for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
                if re.search(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback", line)
            ]
            if lines:
                report.sections.append((f"{log.stem} log ({running.backend})", "\n".join(lines[-LOG_LINES:])))
    return report
