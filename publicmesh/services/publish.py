"""Publishing a service: validate → fetch what the rules need, one municipality at a time, through the hub →
evaluate eligibility and amounts next to the data (Polars) → what only the form needs, for the eligible → one
offer and one notice per eligible unit → applications for people with a prior intent → automatic decisions →
payout files.

Runs as the services member (GOV/digital/services) on the services part's own store. Re-publishing is safe:
offers, notices and applications are unique per service and unit, so only what is new is created. A municipality's
offers are announced through an outbox (announcements): a publish killed anywhere is finished by the next one or
when the services part starts, and while a part it calls restarts, a call is tried again (RETRY_S).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
from sqlalchemy import Engine, insert, select

from publicmesh import safe_yaml
from publicmesh.protocol.client import MeshClient
from publicmesh.protocol.members import PORTAL
from publicmesh.services import announcements, decisions, rules
from publicmesh.services import applications as apps
from publicmesh.services import definition as definitions
from publicmesh.services.fetch import ScanChoices, fetch_details, fetch_municipality, plan, purpose_of
from publicmesh.services.offers import store_offers
from publicmesh.services.payout import pay_approved
from publicmesh.services.store import metadata, publications, utc_now

SERVICES_MEMBER = "GOV/digital/services"
# Municipalities fetched while one is evaluated. One: at 10,000,000 residents two measured 102-107 s and a
# summed peak of 10.5 GiB, one 109 s and 8.7 GiB (the processes share two cores either way).
FETCH_AHEAD = 1
# Seconds a call through the hub is tried again while the hub, an agency node or the portal restarts (the
# supervisor restarts a dead part within seconds): a publish outlives a restart instead of stopping half done.
RETRY_S = 120.0
Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass
class Summary:
    service: str
    version: int
    residents: int = 0
    eligible: int = 0
    new_offers: int = 0
    notices: int = 0
    resumed: dict = field(default_factory=dict)  # what an earlier, stopped publish left unannounced, finished now
    prior_intent_applications: int = 0
    total_yen: int = 0
    by_municipality: dict[str, dict] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)  # wall-clock seconds of the publish, adding up to total
    background: dict[str, float] = field(default_factory=dict)  # seconds of the writer threads, within the phases
    payout: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def publish(
    engine: Engine,
    client: MeshClient,
    path: Path | str,
    municipalities: list[str],
    payout_dir: Path,
    *,
    progress: Progress | None = None,
    compile_rules=None,
    load_definition=None,
) -> Summary:
    progress = progress or (lambda *_: None)
    started = time.perf_counter()
    text = Path(path).read_text(encoding="utf-8")
    definition = (load_definition or definitions.load_definition)(Path(path))
    doc = safe_yaml.load(text)
    compiled = rules_of(doc, compile_rules)
    summary = Summary(doc["id"], int(doc["version"]))
    summary.phases["validate"] = time.perf_counter() - started
    metadata.create_all(engine)
    client = client.retrying(RETRY_S)
    summary.resumed = resume(engine, client, doc["id"])
    fetch = plan(doc, compiled)
    fields = {k: v for k, v in form_sources(doc).items() if k not in fetch.detail_fields}
    # FETCH_AHEAD municipalities are fetched ahead: while one is evaluated here, the hub and the agencies
    # already answer the next (each is its own process). A municipality's offers are written by a thread of their
    # own while the next one is evaluated, and its notices (and the applications of its prior intents) by another
    # while the next one's offers are written: the portal stores notices while this process writes offers. One
    # municipality at a time in each, in order.
    with (
        ThreadPoolExecutor(max_workers=FETCH_AHEAD, thread_name_prefix="publish-fetch") as pool,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="publish-offers") as writer,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="publish-notify") as notifier,
    ):
        first_read = {code: threading.Event() for code in municipalities}
        scans = ScanChoices()  # the sources the hub does not let be scanned: asked once per publish

        def fetch_one(code: str) -> tuple[str, pl.LazyFrame]:
            try:
                return code, fetch_municipality(
                    client, doc, code, attributes=fetch.rules, first_read=first_read[code].set, lazy=True, scans=scans
                )
            finally:
                first_read[code].set()  # (also when it failed: its error is raised where it is used)

        fetched = _ahead(pool, fetch_one, municipalities, FETCH_AHEAD)

        def send(fresh: pl.DataFrame, row: int, done: int) -> None:
            clock = _Clock(summary.background, "notify", time.perf_counter())
            intents = notify(client, doc, fresh)
            clock.lap("notify")
            summary.prior_intent_applications += decide_by_intent(engine, client, doc, fresh.filter(intents).to_dicts())
            announcements.sent(engine, row)
            clock.lap("decide")
            summary.new_offers += fresh.height
            summary.notices += fresh.height
            progress("notify", done, len(municipalities))

        def write(code: str, eligible: pl.DataFrame, done: int) -> Future:
            clock = _Clock(summary.background, "offers", time.perf_counter())
            row = announcements.opened(engine, doc, code)
            fresh = store_offers(engine, doc, code, eligible)
            announcements.written(engine, row, fresh)
            clock.lap("offers")
            return notifier.submit(send, fresh, row, done)

        writing, sending = None, []
        t0 = time.perf_counter()
        for k, (code, fetched_frame) in enumerate(fetched):
            clock = _Clock(summary.phases, "fetch", t0)
            frame = fetched_frame.collect()  # its joins, here: the fetching thread is on to the next municipality
            del fetched_frame
            clock.lap("join")
            decided = compiled.decide(frame, doc["unit"], fields)
            clock.lap("evaluate")
            if k + 1 < len(municipalities):
                # The next municipality's residents are read first (a source listed after them waits for them): the
                # details of this one do not slow that read down at the same agency.
                first_read[municipalities[k + 1]].wait()
                clock.lap("fetch")
            eligible = fetch_details(client, doc, code, decided.filter(pl.col("eligible")), fetch, compiled)
            clock.lap("details")
            if writing is not None:  # the previous municipality's offers, and the notices of the one before
                sending.append(writing.result())
                if len(sending) > 1:
                    sending.pop(0).result()
                clock.lap("write")
            writing = writer.submit(write, code, eligible, k + 1)
            summary.residents += frame.height
            summary.eligible += eligible.height
            total = int(eligible["amount"].sum() or 0)
            summary.total_yen += total
            summary.by_municipality[code] = {"residents": frame.height, "eligible": eligible.height, "total_yen": total}
            progress("evaluate", k + 1, len(municipalities))
            del frame, decided, eligible
            t0 = time.perf_counter()
        if writing is not None:
            t0 = time.perf_counter()
            for future in [*sending, writing.result()]:
                future.result()
            _Clock(summary.phases, "write", t0)
    finish(engine, client, doc, text, definition, summary, payout_dir, progress)
    summary.phases["total"] = time.perf_counter() - started
    return summary


def finish(
    engine: Engine,
    client: MeshClient,
    doc: dict,
    text: str,
    definition,
    summary: Summary,
    payout_dir: Path,
    progress: Progress,
) -> None:
    """After every municipality: the publication recorded (once per version), then the payout files and their
    notices where the definition pays by Zengin transfer."""
    with engine.begin() as conn:
        if (
            conn.execute(
                select(publications.c.version).where(
                    publications.c.service_id == doc["id"], publications.c.version == int(doc["version"])
                )
            ).first()
            is None
        ):
            conn.execute(
                insert(publications).values(
                    service_id=doc["id"],
                    version=int(doc["version"]),
                    content_hash=definitions.content_hash(definition),
                    definition=text,
                    published_at=utc_now(),
                    eligible=summary.eligible,
                    total_yen=summary.total_yen,
                )
            )
    if doc.get("payout", {}).get("method") == "zengin-sogo-furikomi":
        t5 = time.perf_counter()
        summary.payout = pay_approved(engine, client, doc, payout_dir, progress=progress)
        if summary.payout["paid"]:  # their payout notices, written with the file
            decisions.NoticeSender(engine, client).send_all()
        summary.phases["payout"] = time.perf_counter() - t5


def rules_of(doc: dict, compile_rules=None):
    """The definition's rules compiled at its reference date (``as_of``)."""
    compile_rules = compile_rules or rules.compile_rules
    as_of = doc["as_of"] if isinstance(doc["as_of"], dt.date) else dt.date.fromisoformat(str(doc["as_of"]))
    return compile_rules(doc["rules"], doc.get("tables") or {}, as_of)


def form_sources(doc: dict) -> dict[str, str]:
    """The form's fields that come from the mesh, as the columns decide() adds: form.<name> → source."""
    return {f"form.{f['name']}": str(f["source"]) for f in doc.get("form", []) if "source" in f}


def offer(
    engine: Engine, client: MeshClient, doc: dict, code: str, eligible: pl.DataFrame, unit_key: str | None = None
) -> int:
    """What publishing does for a municipality, for a few eligible units (e.g. a birth's household): their
    offers (new ones only), one notice each, and applications for those with a prior intent. Returns how
    many offers are new."""
    row = announcements.opened(engine, doc, code)
    created = store_offers(engine, doc, code, eligible, unit_key)
    announcements.written(engine, row, created)
    announce(engine, client, doc, created)
    announcements.sent(engine, row)
    return created.height


def announce(engine: Engine, client: MeshClient, doc: dict, fresh: pl.DataFrame) -> int:
    """The offers' notices, and the applications of those with a prior intent (how many were made)."""
    intents = notify(client, doc, fresh)
    return decide_by_intent(engine, client, doc, fresh.filter(intents).to_dicts())


def resume(
    engine: Engine, client: MeshClient, service_id: str | None = None, older_than: dt.timedelta | None = None
) -> dict:
    """What stopped publishes left unannounced (of one service, or all), announced now (announcements.resume)."""
    return announcements.resume(engine, lambda doc, fresh: announce(engine, client, doc, fresh), service_id, older_than)


def notify(client: MeshClient, doc: dict, fresh: pl.DataFrame) -> pl.Series:
    """One notice per new offer into the person's portal inbox (through the hub), all of a municipality's in one
    Arrow exchange; who has a prior intent."""
    if fresh.height == 0:
        return pl.Series("prior_intent", [], dtype=pl.Boolean)
    text = doc["notices"]["eligible"]
    # What the notices say, dictionary-encoded (notices_wire): a title, and a body per distinct amount.
    amounts = fresh["amount_yen"].unique().sort()
    which = pa.array(amounts.search_sorted(fresh["amount_yen"]).cast(pl.Int32).to_numpy())
    single = pa.array(np.zeros(fresh.height, dtype=np.int32))

    def said(indices: pa.Array, values: list[str]) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(indices, pa.array(values, pa.string()))

    notices = fresh.select(
        "subject",
        pl.concat_str(pl.lit(f"{doc['id']}:"), "unit_key", pl.lit(":eligible")).alias("key"),
        pl.concat_str(pl.lit("/applications/offers/"), "id").alias("link"),
    ).to_arrow()
    for lang in ("ja", "en"):
        notices = notices.append_column(f"title_{lang}", said(single, [text["title"][lang]]))
        notices = notices.append_column(
            f"body_{lang}", said(which, [text["body"][lang].format(amount=f"{a:,}") for a in amounts])
        )
    flags = client.notify_table(str(PORTAL), purpose_of(doc["id"]), doc["id"], notices)
    return pl.Series("prior_intent", flags, dtype=pl.Boolean)


def _ahead(pool: ThreadPoolExecutor, work: Callable, items: list, ahead: int):
    """work(item) for each item, in order, with at most ``ahead`` items worked on beyond the one being used (so
    the frames fetched ahead do not pile up when using them is the slower side)."""
    pending: deque[Future] = deque()
    for item in items:
        pending.append(pool.submit(work, item))
        if len(pending) > ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


class _Clock:
    """Adds the seconds since the last lap to a phase of the summary."""

    def __init__(self, phases: dict[str, float], phase: str, since: float):
        self.phases, self.last = phases, since
        self.lap(phase)

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - self.last
        self.last = now


def decide_by_intent(engine: Engine, client: MeshClient, doc: dict, chosen: list[dict]) -> int:
    """Applications by prior intent, decided by the rules where the workflow says so; the approval notices written
    with them are sent right away (once each: a notice sent is marked, and the inbox keeps one per key)."""
    created = _apply_by_intent(engine, doc, chosen)
    if created:
        decisions.NoticeSender(engine, client).send_all()
    return created


def _apply_by_intent(engine: Engine, doc: dict, chosen: list[dict]) -> int:
    """People who said in advance 'pay me what I am eligible for' get an application without asking."""
    workflow = doc.get("workflow", {})
    created = 0
    with engine.begin() as conn:
        for offer in chosen:
            if apps.withdrawn_before(conn, offer):  # announced again after a stop: a withdrawal stands
                continue
            try:
                apps.create(
                    conn,
                    offer,
                    "prior-intent",
                    signature=None,
                    review_over=int(workflow.get("review_over", 0)),
                    automatic=bool(workflow.get("automatic", False)),
                    actor="prior-intent",
                    definition=doc,
                )
                created += 1
            except apps.Problem:
                continue  # already applied
    return created
