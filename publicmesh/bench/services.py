"""``publicmesh bench services``: publish the emergency benefit to a whole synthetic population on a running mesh,
then, in the same run, the same rule in OpenFisca on the same population, and the resident path in a browser.

Publishing is timed from the definition file to the last notice written and the payout files ready, split by
phase; peak memory is the sum of every process's own high-water mark (the benchmark and each part), with the
libraries they share counted once, so it is an upper bound of what the machine needed at once.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import polars as pl
import pyarrow as pa
import yaml
from sqlalchemy import text

from publicmesh.audit.subjects import page_subjects
from publicmesh.bench.resident_path import measure
from publicmesh.protocol.client import MeshClient
from publicmesh.runtime.demo import AUTH_PIN, DEMO_MUNICIPALITY, SIGNING_PASSWORD, register_demo_account
from publicmesh.runtime.provision import provision
from publicmesh.runtime.seed import seed
from publicmesh.runtime.supervisor import Supervisor
from publicmesh.runtime.topology import municipalities, part
from publicmesh.services.fetch import fetch_municipality, plan, purpose_of
from publicmesh.services.operator import publish_file, publish_file_queued
from publicmesh.services.publish import SERVICES_MEMBER, publish, rules_of
from publicmesh.services.rules import compile_rules
from publicmesh.settings import Settings
from publicmesh.storage import engine_for

SERVICE = "emergency-benefit"
DEFINITIONS = Path(__file__).parents[1] / "services" / "definitions"
RULE_INPUT = ["subject", "household", "person.status", "tax.income", "household.relation"]


def peak_rss_mb(pids: list[int]) -> float:
    """The processes' peak memory, in MiB, their live children's included (an agency's SQLite reader is a process
    of its own): each process's own high-water mark (VmHWM less the file pages it maps now: libraries), added up,
    plus the file pages they map, counted once (each page shared by n of them counts 1/n in each one's Pss_File).
    Summing the high-water marks alone would count libpolars and libarrow again in every one of some twenty
    processes (about 90 MiB each)."""
    return _mib(_memory(pids)["peak"])


def peak_rss_sum_mb(pids: list[int]) -> float:
    """The high-water marks (VmHWM) added up, in MiB: each process's libraries counted in each (an upper bound)."""
    return _mib(_memory(pids)["hwm"])


def _mib(kb: int) -> float:
    return round(kb / 1024, 1)


def _memory(pids: list[int]) -> dict[str, int]:
    """kB: ``hwm`` the VmHWMs added up, ``peak`` as peak_rss_mb counts it."""
    hwm = own = files = 0
    for pid in descendants(pids):
        try:
            status = _kb_fields(Path(f"/proc/{pid}/status").read_text())
            rollup = _kb_fields(Path(f"/proc/{pid}/smaps_rollup").read_text())
        except (OSError, ValueError):
            continue  # gone meanwhile
        hwm += status.get("VmHWM", 0)
        own += max(status.get("VmHWM", 0) - status.get("RssFile", 0), 0)
        files += rollup.get("Pss_File", 0)
    return {"hwm": hwm, "peak": own + files}


def _kb_fields(text: str) -> dict[str, int]:
    """'Name:   1234 kB' lines of /proc/<pid>/status or smaps_rollup."""
    fields = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[name] = int(parts[0])
    return fields


def cpu_seconds(parts: dict[str, int]) -> dict[str, float]:
    """Each part's processor seconds so far (user and system), its live children's included (an agency's
    SQLite reader, the publisher's bulk writer; the publisher's other children are the parts, counted as theirs):
    taken before and after publishing, the difference is what the publish cost each part."""
    tick = os.sysconf("SC_CLK_TCK")
    theirs = {name: descendants([pid]) for name, pid in parts.items() if name != "publisher"}
    others = {process for processes in theirs.values() for process in processes}
    used = {}
    for name, pid in parts.items():
        total = 0
        for process in theirs.get(name) or [p for p in descendants([pid]) if p not in others]:
            try:
                fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        used[name] = total / tick
    return used


def reset_peak_rss() -> bool:
    """This process's high-water mark (VmHWM) set back to its current size (Linux /proc/self/clear_refs), so that
    what it did before publishing does not count; False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def descendants(pids: list[int]) -> list[int]:
    """The processes and, recursively, their children (Linux /proc)."""
    found, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.append(pid)
        for children in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                todo += [int(c) for c in children.read_text().split()]
            except OSError:
                continue
    return found


def audit_per_subject(settings: Settings, purpose: str) -> dict:
    """What the publish left in the exchange record log: its records, how many persons they name (each person
    named by an exchange has a record of it to find and prove), and how many distinct persons."""
    engine = engine_for("audit", settings)
    try:
        with engine.connect() as conn:
            records = conn.execute(
                text("SELECT COUNT(*) FROM audit_records WHERE purpose = :p"), {"p": purpose}
            ).scalar()
            singles = (
                conn.execute(
                    text(
                        "SELECT subject FROM audit_records r WHERE purpose = :p AND NOT EXISTS "
                        "(SELECT 1 FROM audit_batches b WHERE b.position = r.position)"
                    ),
                    {"p": purpose},
                )
                .scalars()
                .all()
            )
            parts = [pa.array(singles, pa.string())]
            pages = conn.execution_options(stream_results=True).execute(
                text(  # a record's pages, or those it names
                    "SELECT p.subjects FROM audit_records r JOIN audit_batches b ON b.position = r.position "
                    "JOIN audit_subject_pages p ON p.position = COALESCE(b.pages_at, b.position) "
                    "WHERE r.purpose = :p"
                ),
                {"p": purpose},
            )
            parts += [pa.array(page_subjects(page), pa.string()) for (page,) in pages]
    finally:
        engine.dispose()
    named = pa.chunked_array(parts, pa.string())
    return {"records": records, "subjects_named": len(named), "subjects": pl.Series(named).n_unique()}


def read_rule_input(settings: Settings, doc: dict) -> pl.DataFrame:
    """What the rule read for every resident, read again through the hub after the publish (the same stores, in
    the same run), as an affair of its own: the publish's time, memory and records are then its own. (Keeping it
    while publishing cost the publish 4 s and 7 CPU-s at 10,000,000: 1.2 GB written meanwhile.)"""
    client = MeshClient.for_member(settings, SERVICES_MEMBER, part(settings, "hub").url(settings))
    client.timeout_s = 600
    comparison = {**doc, "id": f"{doc['id']}-openfisca-comparison"}  # its purpose names the comparison
    attributes = plan(doc, rules_of(doc)).rules
    return pl.concat(
        [
            fetch_municipality(client, comparison, code, attributes=attributes).select(RULE_INPUT)
            for code in municipalities()
        ],
        how="diagonal_relaxed",
    )


def compare_openfisca(doc: dict, frame: pl.DataFrame, repeat: int = 3) -> dict:
    """Our compiled rules and the OpenFisca system on the same persons: seconds (the best of ``repeat`` runs of
    each, taken in turn, so a busy moment of the machine does not decide the ratio), ratio and totals in yen."""
    # OpenFisca is in the test extra only (and 0.3 s to load): imported by the comparison alone.
    from publicmesh.bench.openfisca_rule import openfisca_emergency_benefit  # noqa: PLC0415

    compiled = compile_rules(doc["rules"], doc.get("tables") or {}, doc["as_of"])
    persons = frame.select(RULE_INPUT)
    ours_times, theirs_times = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        ours = compiled.decide(persons, doc["unit"])
        ours_total = int(ours.filter(pl.col("eligible"))["amount"].sum() or 0)
        ours_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        theirs = openfisca_emergency_benefit(persons, threshold_yen=2_000_000, per_member_yen=100_000)
        openfisca_total = int(theirs["amount"].sum() or 0)
        theirs_times.append(time.perf_counter() - started)
    ours_seconds, openfisca_seconds = min(ours_times), min(theirs_times)
    return {
        "persons": frame.height,
        "runs": repeat,
        "ours_seconds": round(ours_seconds, 3),
        "openfisca_seconds": round(openfisca_seconds, 3),
        "ratio": round(openfisca_seconds / ours_seconds, 2),
        "ours_total_yen": ours_total,
        "openfisca_total_yen": openfisca_total,
        "totals_match": ours_total == openfisca_total,
    }


def run(
    residents: int = 1_000_000,
    *,
    openfisca: bool = True,
    browser: bool = True,
    base_port: int = 8990,
    progress=None,
    workers: int = 0,
) -> dict:
    """``workers``: 0 publishes in this process (the pipelined publish); more publishes as jobs for that many
    publisher worker processes (services publish --queue)."""
    say = progress or (lambda *_: None)
    path = DEFINITIONS / f"{SERVICE}.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    result: dict = {"service": SERVICE, "residents": residents}
    with tempfile.TemporaryDirectory(prefix="publicmesh-services-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp), base_port=base_port)
        say(f"seeding {residents:,} residents")
        provision(settings)
        # The peak measured is the publish's: seeding runs in a process of its own (what it frees would otherwise
        # stay in this one's allocators), and what the OpenFisca comparison reads later waits on disk.
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as seeder:
            result["seed_seconds"] = seeder.submit(seed, settings, residents, municipalities(), 7).result()["seconds"]
        result["peak_since_publish"] = reset_peak_rss()  # this process's earlier work not counted either
        with Supervisor(settings) as supervisor:
            supervisor.start()
            say("publishing the emergency benefit")
            # The publisher is this process (its threads); the parts run beside it, each with its own processes.
            parts = {"publisher": os.getpid(), **{name: p.pid for name, p in supervisor.processes.items()}}
            started = [_worker(settings) for _ in range(workers)]
            parts.update({f"worker-{k + 1}": w.pid for k, w in enumerate(started)})
            try:
                before = cpu_seconds(parts)
                summary = publish_file_queued(settings, path) if workers else publish_file(settings, path)
                after = cpu_seconds(parts)
                memory = _memory(list(parts.values()))  # (/proc read once for both; the workers still alive)
            finally:
                for worker in started:  # (its figures are read above, while it lives)
                    worker.terminate()
            result.update(
                {
                    "eligible": summary.eligible,
                    "seconds": round(summary.phases["total"], 2),
                    "phases": {k: round(v, 2) for k, v in summary.phases.items() if k != "total"},
                    # the writer threads' own seconds (offers; notices and prior intents), within the phases
                    "background": {k: round(v, 2) for k, v in summary.background.items()},
                    "notices": summary.notices,
                    "total_yen": summary.total_yen,
                    "paid": summary.payout.get("paid", 0),
                    "paid_yen": summary.payout.get("paid_yen", 0),
                    "without_account": summary.payout.get("without_account", 0),
                    "payout_files": len(summary.payout.get("files", [])),
                }
            )
            result["workers"] = workers
            result["peak_rss_mb"] = _mib(memory["peak"])
            result["peak_rss_sum_mb"] = _mib(memory["hwm"])  # the libraries counted in every process
            spent = {name: round(after[name] - before[name], 1) for name in parts}
            result["cpu_seconds"] = {
                "all": round(sum(spent.values()), 1),
                **dict(sorted(spent.items(), key=lambda i: -i[1])),
            }
            result["audit"] = audit_per_subject(settings, purpose_of(SERVICE))
            say(json.dumps(result, ensure_ascii=False))
            if browser:
                result["resident_path"] = _resident_path(settings, say)
            if openfisca:
                say("reading what the rule read again, for OpenFisca")
                rule_input = read_rule_input(settings, doc)
        if openfisca:
            say("the same rule in OpenFisca on the same persons")
            result["openfisca"] = compare_openfisca(doc, rule_input)
    return result


def _worker(settings: Settings) -> subprocess.Popen:
    """A publisher worker process on the bench's mesh (`publicmesh services worker`)."""
    env = {**os.environ, "PUBLICMESH_DATA_DIR": str(settings.data_dir), "PUBLICMESH_BASE_PORT": str(settings.base_port)}
    return subprocess.Popen(
        [sys.executable, "-m", "publicmesh.cli", "services", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _resident_path(settings: Settings, say) -> dict:
    """Notice → submitted application in headless chromium, for the first demo card that heads a household.
    The demo cards are Kitami residents picked before any income is known, so their households are seldom
    eligible for the emergency benefit: the path is then measured on a variant every Kitami household is
    eligible for, published to Kitami only (not part of the publish figures above)."""
    cards = json.loads((settings.data_dir / "demo-cards.json").read_text(encoding="utf-8"))
    heads = [c for c in cards if c["relation"] in ("head", "single")]
    if not heads:
        return {"error": "no demo card heads a household"}
    say("the resident path in a browser")
    doc = yaml.safe_load((DEFINITIONS / f"{SERVICE}.yaml").read_text(encoding="utf-8"))
    doc["id"], doc["rules"]["eligible"] = "resident-path-benefit", 'person.status == "resident"'
    path = settings.data_dir / "resident-path-benefit.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    engine = engine_for("services", settings)
    client = MeshClient.for_member(settings, SERVICES_MEMBER, part(settings, "hub").url(settings))
    client.timeout_s = 600
    try:
        publish(engine, client, path, [DEMO_MUNICIPALITY], settings.data_dir / "payouts")
    finally:
        engine.dispose()
    register_demo_account(settings, heads[0])
    try:
        return measure(part(settings, "portal").url(settings), heads[0]["card_id"], AUTH_PIN, SIGNING_PASSWORD)
    except RuntimeError as exc:
        return {"error": str(exc)}
