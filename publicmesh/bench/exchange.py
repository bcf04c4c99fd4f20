"""``publicmesh bench exchange``: the same signed queries directly to a provider node, then through the hub.

Everything runs on this machine: the number service, the hub, the provider and the load generators
are separate processes; the ratio direct_qps / hub_qps is the figure that travels between machines.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import tempfile
from pathlib import Path

from sqlalchemy import select, text

from publicmesh.agencies import resident_registry
from publicmesh.bench.loadgen import worker
from publicmesh.numbers.keys import load_or_create_master
from publicmesh.numbers.pseudonyms import PseudonymService
from publicmesh.protocol.members import MemberId
from publicmesh.runtime.provision import provision
from publicmesh.runtime.seed import seed
from publicmesh.runtime.supervisor import Supervisor
from publicmesh.runtime.topology import municipalities, part
from publicmesh.settings import Settings
from publicmesh.storage import engine_for

CONSUMER = MemberId.parse("MUNI/012084/child-allowance")
PROVIDER = MemberId.parse("MUNI/012084/resident-registry")
ATTRIBUTES = ["family_name", "given_name", "birth_date", "status"]
PURPOSE = "child-allowance-eligibility"


def _subjects(settings: Settings, limit: int = 5000) -> tuple[list[str], list[str]]:
    """Kitami residents under the registry's pseudonyms (direct) and the consumer's (through the hub)."""
    engine = engine_for("resident-registry", settings)
    with engine.connect() as conn:
        registry = [
            r.pseudonym
            for r in conn.execute(
                select(resident_registry.residents.c.pseudonym)
                .where(resident_registry.residents.c.tenant == PROVIDER.code)
                .limit(limit)
            )
        ]
    engine.dispose()
    service = PseudonymService(load_or_create_master(settings.keys_dir))
    consumer = service.convert(registry, PROVIDER.pseudonym_domain, [CONSUMER.pseudonym_domain])[
        CONSUMER.pseudonym_domain
    ]
    return registry, consumer


def cpu_seconds(pid: int) -> float:
    """A process's processor seconds so far (user and system), from /proc; 0 where there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _phase(
    url: str,
    path: str,
    key_path: Path,
    bodies: list[dict],
    concurrency: int,
    seconds: float,
    parts: dict[str, int],
    processes: int = 2,
) -> dict:
    ctx = mp.get_context("spawn")
    before = {name: cpu_seconds(pid) for name, pid in parts.items()}
    out = ctx.Queue()
    per = max(1, concurrency // processes)
    procs = [
        ctx.Process(
            target=worker, args=(url, path, str(CONSUMER), str(key_path), bodies[k::processes], per, seconds, 1.5, out)
        )
        for k in range(processes)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    spent = {name: cpu_seconds(pid) - before[name] for name, pid in parts.items()}
    spent["load"] = sum(r[5] for r in results)
    sent = sum(r[4] for r in results)
    count = sum(r[0] for r in results)
    latencies = sorted(x for r in results for x in r[2])
    statuses: dict = {}
    for r in results:
        for k, v in r[3].items():
            statuses[k] = statuses.get(k, 0) + v
    return {
        "qps": count / seconds,
        "queries": count,
        "errors": sum(r[1] for r in results),
        "p50_ms": statistics.median(latencies) if latencies else None,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] if latencies else None,
        "statuses": statuses,
        # Processor milliseconds per answered query, by process (``load``: the load generators): a figure that the
        # machine's other work changes far less than the rates, since it is not a share of the processors.
        "cpu_ms": {name: round(1000 * used / sent, 3) if sent else None for name, used in spent.items()},
    }


def run(seconds: float = 10.0, concurrency: int = 32, residents: int = 20_000, progress=None) -> dict:
    say = progress or (lambda *_: None)
    with tempfile.TemporaryDirectory(prefix="publicmesh-bench-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url=os.environ.get("PUBLICMESH_DATABASE_URL", ""),
            base_port=int(os.environ.get("PUBLICMESH_BENCH_PORT", "8800")),
        )
        say(f"Provisioning and seeding {residents:,} residents in {tmp}")
        provision(settings)
        seed(settings, residents, municipalities(), 7)
        registry_subjects, consumer_subjects = _subjects(settings)
        key_path = settings.keys_dir / "members" / f"{CONSUMER.file_stem}.key"
        env = {"PUBLICMESH_DIRECT_CONSUMERS": str(CONSUMER)}
        with Supervisor(settings, env=env) as supervisor:
            supervisor.start(["numbers", "hub", "resident-registry"])
            direct_bodies = [
                {"member": str(PROVIDER), "dataset": "person", "subject": s, "attributes": ATTRIBUTES}
                for s in registry_subjects
            ]
            hub_bodies = [
                {
                    "provider": str(PROVIDER),
                    "dataset": "person",
                    "subject": s,
                    "attributes": ATTRIBUTES,
                    "purpose": PURPOSE,
                }
                for s in consumer_subjects
            ]
            parts = {name: process.pid for name, process in supervisor.processes.items()}
            say(f"Direct to the provider: {seconds} s at concurrency {concurrency}")
            direct = _phase(
                part(settings, "resident-registry").url(settings),
                "/v1/query",
                key_path,
                direct_bodies,
                concurrency,
                seconds,
                parts,
            )
            say(f"Through the hub: {seconds} s at concurrency {concurrency}")
            hub = _phase(
                part(settings, "hub").url(settings), "/v1/query", key_path, hub_bodies, concurrency, seconds, parts
            )
        audit_engine = engine_for("audit", settings)
        with audit_engine.connect() as conn:
            audit_records = conn.execute(text("SELECT COUNT(*) FROM audit_records")).scalar()
        audit_engine.dispose()
    return {
        "direct_qps": round(direct["qps"], 1),
        "hub_qps": round(hub["qps"], 1),
        "ratio": round(direct["qps"] / hub["qps"], 3) if hub["qps"] else None,
        "hub_p50_ms": round(hub["p50_ms"], 2) if hub["p50_ms"] else None,
        "hub_p99_ms": round(hub["p99_ms"], 2) if hub["p99_ms"] else None,
        "direct_p50_ms": round(direct["p50_ms"], 2) if direct["p50_ms"] else None,
        "direct_p99_ms": round(direct["p99_ms"], 2) if direct["p99_ms"] else None,
        "errors": direct["errors"] + hub["errors"],
        "queries": direct["queries"] + hub["queries"],
        "hub_queries": hub["queries"],
        "audit_records": audit_records,
        "concurrency": concurrency,
        "seconds_per_phase": seconds,
        "statuses": {"direct": direct["statuses"], "hub": hub["statuses"]},
        "cpu_ms_per_query": {
            "direct": _with_total(direct["cpu_ms"]),
            "hub": _with_total(hub["cpu_ms"]),
        },
    }


def _with_total(used: dict) -> dict:
    known = [v for v in used.values() if v is not None]
    return {"all": round(sum(known), 3) if known else None, **used}
