"""``publicmesh chaos``: fault trials on a mesh of their own. A steady load (signed queries through the hub,
services published one after another as jobs for two publisher workers, the demo residents applying through the
portal) runs while, every few seconds, one process is killed with
SIGKILL: a hub or portal replica, an agency node, the number service, the services part or a publisher worker.
The supervisor restarts it. Afterwards every eligible household must have exactly one offer and one notice, every
acknowledged application must exist once, the audit log must verify, and the queries that failed even after the
client's retries must stay under 1%.

Not yet: births and moves emitting events in the load; nats-server and a PostgreSQL restart among the victims
(they come with the JetStream transport and the PostgreSQL profile).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from sqlalchemy import func, select

from publicmesh.agencies.resident_registry import residents
from publicmesh.notices.schema import notices as notice_table
from publicmesh.protocol.client import HubError, MeshClient
from publicmesh.runtime.chaos_applicants import Applicants
from publicmesh.runtime.provision import provision
from publicmesh.runtime.seed import fresh_stores, seed
from publicmesh.runtime.supervisor import Backoff, Supervisor
from publicmesh.runtime.topology import municipalities, part
from publicmesh.services.operator import publish_file_queued
from publicmesh.services.store import offers
from publicmesh.settings import Settings
from publicmesh.storage import engine_for

CONSUMER = "MUNI/012084/child-allowance"
REGISTRY = "MUNI/012084/resident-registry"
DEFINITION = Path(__file__).parents[1] / "services" / "definitions" / "emergency-benefit.yaml"
VICTIMS = ("hub-1", "hub-2", "portal-1", "portal-2", "resident-registry", "local-tax", "numbers", "services")
WORKERS = 2
SERVICE = "chaos-benefit"  # the trials' services: chaos-benefit-1, -2, …
MARKER = "障害試験給付金"  # their titles, as the applicants find their offers
RETRY_S = 15.0  # a client's budget for retrying an idempotent query (a restart takes a few seconds)


@dataclass
class Load:
    """Signed queries through the hub. One that fails is retried with backoff for up to RETRY_S, as a client of a
    failing-over service does (the query is idempotent); ``retried`` counts the queries that needed it, ``failed``
    those that failed even so."""

    ok: int = 0
    retried: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # first failures, by kind
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, client: MeshClient, subjects: list[str]) -> None:
        k = 0
        while not self.stop.is_set():
            subject = subjects[k % len(subjects)]
            k += 1
            deadline, pause, tries = time.monotonic() + RETRY_S, 0.25, 0
            while True:
                tries += 1
                kind = self._ask(client, subject)
                if kind is None:
                    self.ok += 1
                    break
                if tries == 1:
                    self.retried += 1
                    self.errors[kind] = self.errors.get(kind, 0) + 1
                if time.monotonic() + pause > deadline:
                    self.failed += 1
                    break
                time.sleep(pause)
                pause = min(pause * 2, 2.0)

    @staticmethod
    def _ask(client: MeshClient, subject: str) -> str | None:
        """None when answered (found or not), else what went wrong."""
        try:
            client.query(REGISTRY, "person", subject, ["family_name"], "child-allowance-eligibility")
        except HubError as error:
            return None if error.status == 404 else f"{error.status} {error.problem.get('type', '')}"
        except (httpx.HTTPError, OSError, ValueError) as exc:
            return type(exc).__name__
        return None


def run(
    trials: int = 20,
    *,
    residents_count: int = 2000,
    every_s: float = 3.0,
    base_port: int = 9950,
    seed_value: int = 7,
    say: Callable[[str], None] = lambda _: None,
) -> dict:
    """The trials on a fresh mesh in a temporary folder; the JSON figures (trials, lost, duplicates, verify,
    errors_pct, recover_s_max, and the kills)."""
    rng = random.Random(seed_value)
    with tempfile.TemporaryDirectory(prefix="publicmesh-chaos-") as tmp:
        settings = Settings(data_dir=Path(tmp), database_url="", base_port=base_port, replicas=2)
        say(f"seeding {residents_count:,} residents")
        fresh_stores(settings)
        provision(settings)
        seed(settings, residents_count, municipalities(), seed_value)
        with Supervisor(settings) as supervisor:
            say("starting the mesh (two hub and two portal replicas behind HAProxy)")
            supervisor.start()
            supervisor.watch(Backoff(first_s=0.5, max_s=2.0, give_up_after=1000))
            workers = [_worker(settings) for _ in range(WORKERS)]
            try:
                return _trials(settings, supervisor, workers, trials, every_s, rng, say)
            finally:
                for worker in workers:
                    worker.kill()
                    worker.wait(10)


def _trials(settings, supervisor, workers, trials, every_s, rng, say) -> dict:
    client = MeshClient.for_member(settings, CONSUMER, settings.hub_url)
    client.timeout_s = 10
    load = Load()
    threads = [threading.Thread(target=load.run, args=(client, _subjects(settings)), daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    published: dict = {}
    publisher = threading.Thread(target=_publish_until_done, args=(settings, published, trials, every_s), daemon=True)
    publisher.start()
    applicants = Applicants(settings, MARKER)
    applying = threading.Thread(target=applicants.run, daemon=True)
    applying.start()
    kills, recover = [], []
    for trial in range(1, trials + 1):
        time.sleep(every_s)
        victim = rng.choice([*VICTIMS, "worker"])
        if victim == "worker":
            k = rng.randrange(len(workers))
            workers[k].kill()
            workers[k].wait(10)
            workers[k] = _worker(settings)  # a worker is started again by its operator (a service manager)
            kills.append(victim)
            say(f"trial {trial}: killed a publisher worker")
            continue
        process = supervisor.processes.get(victim)
        if process is None:
            continue
        killed_at = time.monotonic()
        os.kill(process.pid, signal.SIGKILL)
        kills.append(victim)
        recover.append(_recovered(settings, supervisor, victim, process, killed_at))
        say(f"trial {trial}: killed {victim}; serving again in {recover[-1]:.1f} s")
    load.stop.set()
    for thread in threads:
        thread.join(30)
    publisher.join(600)
    applicants.finish()
    applying.join(120)
    counts = _exactly_once(settings)
    applied = applicants.counted()
    total = load.ok + load.failed
    return {
        "trials": len(kills),
        "kills": kills,
        "lost": counts["lost"] + applied["lost"],
        "duplicates": counts["duplicates"] + applied["duplicates"],
        "eligible": counts["eligible"],
        "notices": {"lost": counts["lost"], "duplicates": counts["duplicates"]},
        "applications": applied,
        "publishes": published.get("runs", 0),
        "publish_error": published.get("error"),
        "verify": _verify(settings),
        "queries": total,
        "retried": load.retried,
        "errors": load.errors,
        "errors_pct": round(100 * load.failed / max(total, 1), 3),
        "recover_s_max": round(max(recover, default=0.0), 2),
    }


def _publish_until_done(settings: Settings, published: dict, trials: int, every_s: float) -> None:
    """Services published as jobs, one after another while the kills go on: each a new service (chaos-benefit-1,
    -2, …, the emergency benefit under another id and title), so every run offers, announces and is applied for
    afresh. A run that fails is left; the next publish of the same service would finish it (here: the outbox's
    resume at the services part's start, and the run after)."""
    base = yaml.safe_load(DEFINITION.read_text(encoding="utf-8"))
    base["rules"]["eligible"] = 'person.status == "resident"'  # every household: every demo resident applies
    deadline = time.monotonic() + trials * every_s
    runs = 0
    while runs == 0 or time.monotonic() < deadline:
        doc = {**base, "id": f"{SERVICE}-{runs + 1}", "title": {"ja": f"{MARKER}{runs + 1}", "en": f"Chaos {runs + 1}"}}
        path = Path(settings.data_dir) / f"{doc['id']}.yaml"
        path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        try:
            publish_file_queued(settings, path, timeout_s=600)
            runs += 1
            published["runs"] = runs
        except Exception as exc:  # noqa: BLE001 — recorded; the same service is published again
            published["error"] = f"{type(exc).__name__}: {exc}"
            time.sleep(1)


def _recovered(settings, supervisor, name: str, killed, since: float, timeout_s: float = 60) -> float:
    """Seconds from the kill until the restarted process answers its health check."""
    deadline = since + timeout_s
    while time.monotonic() < deadline:
        process = supervisor.processes.get(name)
        if process is not None and process is not killed:
            try:
                if httpx.get(part(settings, name).url(settings) + "/healthz", timeout=1).status_code == 200:
                    return time.monotonic() - since
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    return timeout_s


def _subjects(settings: Settings) -> list[str]:
    from publicmesh.numbers.keys import load_or_create_master  # noqa: PLC0415 (the harness speaks as the registry)
    from publicmesh.numbers.pseudonyms import PseudonymService  # noqa: PLC0415

    engine = engine_for("resident-registry", settings)
    with engine.connect() as conn:
        mine = list(
            conn.execute(select(residents.c.pseudonym).where(residents.c.tenant == "012084").limit(50)).scalars()
        )
    engine.dispose()
    numbers = PseudonymService(load_or_create_master(settings.keys_dir))
    return numbers.convert(mine, "resident-registry", ["child-allowance"])["child-allowance"]


def _exactly_once(settings: Settings) -> dict:
    """Eligible households of the trials' services (offers), those without a notice (lost), and notices beyond one
    per offer."""
    services = engine_for("services", settings)
    with services.connect() as conn:
        rows = conn.execute(
            select(offers.c.service_id, offers.c.unit_key).where(offers.c.service_id.like(f"{SERVICE}-%"))
        ).all()
    services.dispose()
    units = {f"{service}:{unit}" for service, unit in rows}
    inbox = engine_for("notices", settings)
    with inbox.connect() as conn:
        keys = conn.execute(
            select(notice_table.c.idempotency_key, func.count())
            .where(notice_table.c.idempotency_key.like(f"{SERVICE}-%:eligible"))
            .group_by(notice_table.c.idempotency_key)
        ).all()
    inbox.dispose()
    noticed = {key.removesuffix(":eligible"): count for key, count in keys}
    return {
        "eligible": len(units),
        "lost": len(units - noticed.keys()),
        "duplicates": sum(count - 1 for count in noticed.values()) + len(noticed.keys() - units),
    }


def _verify(settings: Settings) -> str:
    env = {**os.environ, "PUBLICMESH_DATA_DIR": str(settings.data_dir), "PUBLICMESH_DATABASE_URL": ""}
    done = subprocess.run(
        [sys.executable, "-m", "publicmesh.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return "ok" if done.returncode == 0 else (done.stdout + done.stderr).strip()[-500:]


def _worker(settings: Settings) -> subprocess.Popen:
    env = {
        **os.environ,
        "PUBLICMESH_DATA_DIR": str(settings.data_dir),
        "PUBLICMESH_BASE_PORT": str(settings.base_port),
        "PUBLICMESH_DATABASE_URL": "",
        "PUBLICMESH_PUBLISH_LEASE": "5",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "publicmesh.cli", "services", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
