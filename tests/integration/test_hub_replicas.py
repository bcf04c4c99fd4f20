"""Two hub replicas and two portal replicas behind HAProxy (PUBLICMESH_REPLICAS=2), on a small mesh of their own:
one load of signed queries served by both hubs, one appended audit log with one order (no position twice,
`audit verify` passes), and a hub replica killed under the load is taken out by the proxy while the other serves
(the client retries an idempotent query that failed, as a client of a failing-over service does)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import func, select

from publicmesh.audit.schema import records
from publicmesh.protocol.client import MeshClient
from publicmesh.runtime.chaos import Load
from publicmesh.runtime.provision import provision
from publicmesh.runtime.seed import fresh_stores, seed
from publicmesh.runtime.supervisor import Backoff, Supervisor
from publicmesh.runtime.topology import municipalities
from publicmesh.settings import Settings
from publicmesh.storage import engine_for

BASE_PORT = (
    int(os.environ.get("PUBLICMESH_TEST_BASE_PORT", 9100)) + 500
)  # replicas at +100..+112 of it: clear of the other meshes
CONSUMER = "MUNI/012084/child-allowance"

pytestmark = pytest.mark.skipif(
    shutil.which("haproxy") is None and not os.path.exists("/usr/sbin/haproxy"),
    reason="HAProxy is not installed (scripts/haproxy.sh)",
)


@pytest.fixture(scope="module")
def replicated(tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("replicas"), database_url="", base_port=BASE_PORT, replicas=2)
    fresh_stores(settings)
    provision(settings)
    seed(settings, 300, municipalities(), 11)
    supervisor = Supervisor(settings)
    try:
        supervisor.start()
        yield settings, supervisor
    finally:
        supervisor.stop()


def _subjects(settings: Settings) -> list[str]:
    from publicmesh.agencies.resident_registry import residents
    from publicmesh.numbers.keys import load_or_create_master
    from publicmesh.numbers.pseudonyms import PseudonymService

    engine = engine_for("resident-registry", settings)
    with engine.connect() as conn:
        found = conn.execute(select(residents.c.pseudonym).where(residents.c.tenant == "012084").limit(20)).scalars()
        mine = list(found)
    engine.dispose()
    numbers = PseudonymService(load_or_create_master(settings.keys_dir))
    return numbers.convert(mine, "resident-registry", ["child-allowance"])["child-allowance"]


def _audit(settings: Settings) -> tuple[int, int]:
    engine = engine_for("audit", settings)
    with engine.connect() as conn:
        found = conn.execute(select(func.count(), func.count(func.distinct(records.c.position)))).one()
    engine.dispose()
    return found[0], found[1]


def test_two_hubs_serve_one_load_and_one_dies_under_it(replicated):
    settings, supervisor = replicated
    assert {"hub-1", "hub-2", "portal-1", "portal-2", "haproxy"} <= set(supervisor.processes)
    subjects = _subjects(settings)
    client = MeshClient.for_member(settings, CONSUMER, settings.hub_url)  # the proxy, on the hub's own port
    client.timeout_s = 10
    before = _audit(settings)[0]
    load = Load()  # the fault trials' load: an idempotent query that failed is asked again
    threads = [threading.Thread(target=load.run, args=(client, subjects), daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    victim = supervisor.processes["hub-1"]  # the replica that also routes events
    supervisor.watch(Backoff(first_s=3))  # down long enough for the proxy to serve without it
    os.kill(victim.pid, signal.SIGKILL)
    time.sleep(4)
    load.stop.set()
    for thread in threads:
        thread.join(30)
    outcome = {"ok": load.ok, "retried": load.retried, "failed": load.failed, "errors": load.errors}
    total = load.ok + load.failed
    assert load.ok > 100, outcome
    assert load.failed <= 0.01 * total, outcome  # errors after the client's retries: at most 1%

    count, distinct = _audit(settings)
    assert count == distinct and count - before >= load.ok // 2  # one order: no position twice
    env = {**os.environ, "PUBLICMESH_DATA_DIR": str(settings.data_dir), "PUBLICMESH_DATABASE_URL": ""}
    verified = subprocess.run(
        [sys.executable, "-m", "publicmesh.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    print(f"\nreplicas under kill -9 of hub-1: {outcome}")
