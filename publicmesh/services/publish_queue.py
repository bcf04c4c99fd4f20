"""The publish spread over publisher workers (services.jobs): the coordinator validates the definition, puts one job
per municipality and waits; each worker fetches, evaluates, writes and announces one municipality at a time; the
coordinator then records the publication and writes the payout files, as the single-process publish does.

A worker is `publicmesh services worker` (any number, on this machine or others sharing the services store); a
job redone after its worker died creates nothing twice (jobs).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import polars as pl
from sqlalchemy import Engine

from publicmesh import safe_yaml
from publicmesh.protocol.client import MeshClient
from publicmesh.services import announcements
from publicmesh.services import definition as definitions
from publicmesh.services.fetch import ScanChoices, fetch_details, fetch_municipality, plan
from publicmesh.services.jobs import Job, PublishJobs
from publicmesh.services.offers import store_offers
from publicmesh.services.publish import (
    RETRY_S,
    Progress,
    Summary,
    announce,
    finish,
    form_sources,
    resume,
    rules_of,
)
from publicmesh.services.store import metadata

log = logging.getLogger(__name__)


def publish_one(engine: Engine, client: MeshClient, doc: dict, code: str) -> dict:
    """One municipality of a publish: its residents' data through the hub, the rules, the offers of the eligible
    and their notices (through the outbox). Its figures, as Summary.by_municipality has them, and more."""
    # A worker that died on this job may have written offers it never announced: a redo writes none of them again
    # (they exist), so their announcement (notices, prior-intent applications) is finished here first.
    announcements.resume(engine, lambda d, fresh: announce(engine, client, d, fresh), doc["id"], tenant=code)
    compiled = rules_of(doc)
    fetch = plan(doc, compiled)
    fields = {k: v for k, v in form_sources(doc).items() if k not in fetch.detail_fields}
    frame = fetch_municipality(client, doc, code, attributes=fetch.rules, scans=ScanChoices())
    decided = compiled.decide(frame, doc["unit"], fields)
    eligible = fetch_details(client, doc, code, decided.filter(pl.col("eligible")), fetch, compiled)
    row = announcements.opened(engine, doc, code)
    fresh = store_offers(engine, doc, code, eligible)
    announcements.written(engine, row, fresh)
    prior = announce(engine, client, doc, fresh)
    announcements.sent(engine, row)
    return {
        "residents": frame.height,
        "eligible": eligible.height,
        "total_yen": int(eligible["amount"].sum() or 0),
        "new_offers": fresh.height,
        "prior_intent_applications": prior,
    }


class Worker:
    """Takes jobs until stopped (or, with ``until_idle``, until none is left), renewing each lease while it works."""

    def __init__(
        self, engine: Engine, client: MeshClient, jobs: PublishJobs, name: str | None = None, lease_s: float = 60.0
    ):
        self.engine, self.client, self.jobs = engine, client.retrying(RETRY_S), jobs
        self.lease = dt.timedelta(seconds=lease_s)  # renewed every sixth of it while a job is worked on
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.stopped = threading.Event()
        self.done = 0

    def run(self, idle_s: float = 0.5, until_idle: bool = False) -> int:
        metadata.create_all(self.engine)
        while not self.stopped.is_set():
            job = self.jobs.take(self.name, self.lease)
            if job is None:
                if until_idle:
                    break
                self.stopped.wait(idle_s)
                continue
            self.work(job)
        return self.done

    def work(self, job: Job) -> None:
        working = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(job, working), name="lease", daemon=True)
        renewer.start()
        try:
            result = publish_one(self.engine, self.client, job.definition, job.tenant)
        except Exception:  # noqa: BLE001 — the job stays leased and is taken again when the lease ends
            log.exception("job %s failed (attempt %d); it will be taken again", job.id, job.attempt)
            return
        finally:
            working.set()
            renewer.join()
        if self.jobs.done(job, self.name, result):
            self.done += 1

    def _renew(self, job: Job, working: threading.Event) -> None:
        while not working.wait(self.lease.total_seconds() / 6):
            if not self.jobs.renew(job, self.name, self.lease):
                log.warning("job %s was taken by another worker after its lease ended", job.id)
                return


def publish_queued(
    engine: Engine,
    client: MeshClient,
    jobs: PublishJobs,
    path: Path | str,
    municipalities: list[str],
    payout_dir: Path,
    *,
    progress: Progress | None = None,
    poll_s: float = 0.5,
    timeout_s: float | None = None,
    waiting: Callable[[], None] | None = None,
) -> Summary:
    """The publish as jobs for the workers; returns when every municipality is done (the same Summary as publish)."""
    progress = progress or (lambda *_: None)
    started = time.perf_counter()
    text = Path(path).read_text(encoding="utf-8")
    definition = definitions.load_definition(Path(path))
    doc = safe_yaml.load(text)
    rules_of(doc)  # its rules compile before any job is put
    summary = Summary(doc["id"], int(doc["version"]))
    metadata.create_all(engine)
    client = client.retrying(RETRY_S)
    summary.resumed = resume(engine, client, doc["id"])
    # A run of its own: publishing again later evaluates everyone again (new residents, changed incomes).
    publish_id = f"{doc['id']}:{doc['version']}:{uuid.uuid4().hex[:16]}"
    jobs.put(publish_id, doc, municipalities)
    summary.phases["queue"] = time.perf_counter() - started
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        done = jobs.progress(publish_id)
        finished = {code: result for code, result in done.items() if result is not None}
        progress("municipalities", len(finished), len(municipalities))
        if len(finished) == len(municipalities):
            break
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"{len(municipalities) - len(finished)} municipalities not done: is a worker running?")
        if waiting is not None:
            waiting()
        time.sleep(poll_s)
    for code in municipalities:
        result = finished[code]
        summary.residents += result["residents"]
        summary.eligible += result["eligible"]
        summary.total_yen += result["total_yen"]
        summary.new_offers += result["new_offers"]
        summary.notices += result["new_offers"]
        summary.prior_intent_applications += result["prior_intent_applications"]
        summary.by_municipality[code] = {k: result[k] for k in ("residents", "eligible", "total_yen")}
    summary.phases["workers"] = time.perf_counter() - started - summary.phases["queue"]
    finish(engine, client, doc, text, definition, summary, payout_dir, progress)
    summary.phases["total"] = time.perf_counter() - started
    return summary
