"""The birth one-stop: a birth registered in the resident registry reaches the services part as a 'birth' event
through the hub; every published service whose definition names the birth trigger is then evaluated for the
newborn's household only, and the parent gets one notice per service to accept with one tap.

The event handler only records the birth (inside the delivery's transaction, so a redelivery changes nothing);
``handle_births`` does the exchanges afterwards, from the services part's own worker, never inside the hub's call.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

import polars as pl
from sqlalchemy import Connection, Engine, insert, select, update

from publicmesh import safe_yaml
from publicmesh.protocol.client import HubError, MeshClient
from publicmesh.services.fetch import fetch_municipality, purpose_of
from publicmesh.services.offers import form_shape, offer_form
from publicmesh.services.publish import form_sources, offer, resume, rules_of
from publicmesh.services.revisions import revise
from publicmesh.services.store import births, publications, utc_now

log = logging.getLogger(__name__)


def on_birth(conn: Connection, _agency, tenant: str | None, event: dict) -> None:
    """The 'birth' event handler of the services part: remember the birth; the worker acts on it."""
    data = event["data"]
    conn.execute(
        insert(births).values(
            event_id=event["idempotency_key"],
            tenant=tenant or data.get("municipality_code", ""),
            child=event["subject"],
            parents=[p for p in data.get("parents", []) if p],
            born_on=data["birth_date"],
            received_at=utc_now(),
        )
    )


def birth_services(conn: Connection) -> list[dict]:
    """The latest published version of each service whose definition names the birth trigger."""
    latest: dict[str, tuple[int, str]] = {}
    for service_id, version, text in conn.execute(
        select(publications.c.service_id, publications.c.version, publications.c.definition)
    ):
        if service_id not in latest or version > latest[service_id][0]:
            latest[service_id] = (version, text)
    docs = [safe_yaml.load(text) for _, text in latest.values()]
    return [d for d in docs if "birth" in (d.get("triggers") or [])]


def handle_births(engine: Engine, client: MeshClient, compile_rules=None) -> int:
    """Every recorded birth not yet handled: returns how many were handled."""
    with engine.connect() as conn:
        pending = list(
            conn.execute(select(births).where(births.c.handled_at.is_(None)).order_by(births.c.received_at)).mappings()
        )
        if not pending:  # the worker's usual poll: no definition is read or compiled
            return 0
        services = birth_services(conn)
    compiled = {d["id"]: rules_of(d, compile_rules) for d in services}
    for birth in pending:
        outcome = []
        for doc in services:
            try:
                outcome.append(_offer_for_birth(engine, client, doc, dict(birth), compiled[doc["id"]]))
            except HubError as exc:  # a refused exchange is recorded and not retried forever
                outcome.append(f"{doc['id']}: {exc}")
        with engine.begin() as conn:
            conn.execute(
                update(births)
                .where(births.c.event_id == birth["event_id"])
                .values(handled_at=utc_now(), outcome="; ".join(outcome) or "no birth-triggered service")
            )
    return len(pending)


def _offer_for_birth(engine: Engine, client: MeshClient, doc: dict, birth: dict, compiled) -> str:
    code, parents = birth["tenant"], list(birth["parents"])
    if not parents:
        return f"{doc['id']}: no parent to notify"
    members = _household_members(client, doc, code, parents)
    frame = fetch_municipality(client, doc, code, sorted({*members, *parents, birth["child"]}))
    decided = compiled.decide(frame, doc["unit"], form_sources(doc))
    theirs = decided.filter(
        pl.col("eligible")
        & pl.col("household").is_in(frame.filter(pl.col("subject") == birth["child"])["household"].to_list())
    )
    if theirs.height == 0:
        return f"{doc['id']}: not eligible"
    # A service offered only on births is offered once per child. One the whole population also gets (the child
    # allowance) stays one per household: a birth into a household already offered it revises its amount (額改定).
    if "publish" in (doc.get("triggers") or []):
        unit = theirs.row(0, named=True)
        audit_columns = [c for c in theirs.columns if c.endswith("._audit")]
        revised = revise(engine, client, doc, unit, offer_form(form_shape(doc), unit, audit_columns), birth["child"])
        if revised is not None:
            return revised
        return f"{doc['id']}: {offer(engine, client, doc, code, theirs.head(1))} offered"
    return f"{doc['id']}: {offer(engine, client, doc, code, theirs.head(1), unit_key=birth['child'])} offered"


def _household_members(client: MeshClient, doc: dict, code: str, parents: list[str]) -> list[str]:
    """The parents' household members, from the definition's household source."""
    source = next((s for s in doc["data"].values() if s["dataset"] == "household"), None)
    if source is None:
        return parents
    provider = source["provider"].replace("{code}", code).replace("*", code)
    table = client.bulk(provider, "household", parents, ["members"], purpose_of(doc["id"]))
    members = [m["subject"] for row in table.column("members").to_pylist() for m in (row or [])]
    return members or parents


# A publish announces a municipality's offers within seconds (a minute at 10,000,000 residents): a row unsent for
# longer was left by a process that stopped. (Announcing beside a live publish would send nothing twice either,
# but it would do the work twice.)
STALE = dt.timedelta(minutes=10)


class BirthWorker:
    """Handles recorded births every ``interval_s`` on a daemon thread of the services part; when the part starts,
    it also announces the offers stopped publishes left unannounced (publish.resume), and every ``resume_s`` after,
    those left for longer than STALE."""

    def __init__(self, engine: Engine, client: MeshClient, interval_s: float = 0.5, resume_s: float = 60.0):
        self.engine, self.client, self.interval_s, self.resume_s = engine, client, interval_s, resume_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="birth-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        resumed_at, older_than = 0.0, None  # at the start: whatever is left
        while not self._stop.wait(self.interval_s):
            if time.monotonic() - resumed_at >= self.resume_s:
                resumed_at = time.monotonic()
                try:
                    resume(self.engine, self.client, older_than=older_than)
                    older_than = STALE
                except Exception:  # noqa: BLE001 — a part it calls may be down: the rows stay for the next try
                    log.exception("announcing what a stopped publish left failed; will retry")
            try:
                handle_births(self.engine, self.client)
            except Exception:  # noqa: BLE001 — the worker must survive a hub outage; the birth stays pending
                log.exception("handling births failed; will retry")
