"""The offers' notices, through an outbox (store.announcements): whatever kills a publish between writing a
municipality's offers and announcing them, the offers are announced afterwards, once.

``opened`` is committed before the offers are written and names them by their time-sorted ids; ``sent`` is written
once their notices are in the portal and the applications of prior intents exist. ``resume`` finishes what a killed
process left unsent: it is run by the next publish and when the services part starts. Sending again is harmless (the
portal's inbox keeps one notice per key, a unit has one live application), so a row is never lost for fear of a
duplicate.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable

import orjson
import polars as pl
from sqlalchemy import Engine, func, insert, select, update

from publicmesh.services.store import announcements, offers, utc_now

log = logging.getLogger(__name__)
# Clocks are set back by a little now and then: the first id an outbox row names is this much earlier than now.
CLOCK_SLACK_MS = 60_000
# (the definition, the offers) → how many applications of prior intents were made
Announce = Callable[[dict, pl.DataFrame], int]


def opened(engine: Engine, doc: dict, tenant: str) -> int:
    """A row covering the offers of ``tenant`` written from now on, committed before any is written."""
    first = f"{time.time_ns() // 1_000_000 - CLOCK_SLACK_MS:012x}"
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(announcements).values(
                    service_id=doc["id"],
                    tenant=tenant,
                    first_offer=first,
                    definition=orjson.loads(orjson.dumps(doc)),  # dates as ISO text, as JSON has them
                    created_at=utc_now(),
                )
            ).inserted_primary_key[0]
        )


def written(engine: Engine, row: int, fresh: pl.DataFrame) -> None:
    """The offers are written: the row's range ends at the last of them (a resume then reads no later offer)."""
    last = fresh["id"].max() if fresh.height else None
    with engine.begin() as conn:
        conn.execute(update(announcements).where(announcements.c.id == row).values(last_offer=last or "0"))


def sent(engine: Engine, row: int) -> None:
    with engine.begin() as conn:
        conn.execute(update(announcements).where(announcements.c.id == row).values(sent_at=utc_now()))


def unsent(
    engine: Engine, service_id: str | None = None, older_than: dt.timedelta | None = None, tenant: str | None = None
) -> list[dict]:
    """The rows a killed process left, oldest first (of one service, or of all; opened before ``older_than`` ago;
    of one municipality)."""
    query = select(announcements).where(announcements.c.sent_at.is_(None)).order_by(announcements.c.id)
    if service_id is not None:
        query = query.where(announcements.c.service_id == service_id)
    if tenant is not None:
        query = query.where(announcements.c.tenant == tenant)
    if older_than is not None:
        query = query.where(announcements.c.created_at < utc_now() - older_than)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def covered(engine: Engine, row: dict) -> pl.DataFrame:
    """The offers an outbox row names, as a publish hands them to be announced (offers.COLUMNS; the form as text)."""
    where = [
        offers.c.service_id == row["service_id"],
        offers.c.tenant == row["tenant"],
        offers.c.id >= row["first_offer"],
    ]
    if row["last_offer"] is not None:
        where.append(offers.c.id <= row["last_offer"])
    columns = [c for c in offers.columns if c.name != "form"]
    with engine.connect() as conn:
        found = [dict(r) for r in conn.execute(select(*columns).where(*where).order_by(offers.c.id)).mappings()]
    schema = {"id": pl.Utf8, "service_id": pl.Utf8, "unit_key": pl.Utf8, "subject": pl.Utf8, "tenant": pl.Utf8}
    return pl.DataFrame(found, schema={**schema, "amount_yen": pl.Int64, "version": pl.Int64}, strict=False)


def resume(
    engine: Engine,
    announce: Announce,
    service_id: str | None = None,
    older_than: dt.timedelta | None = None,
    tenant: str | None = None,
) -> dict:
    """Announces what killed processes left unsent (``announce(doc, offers)``, as a publish does); how many rows,
    offers and applications of prior intents."""
    done = {"batches": 0, "offers": 0, "prior_intent_applications": 0}
    for row in unsent(engine, service_id, older_than, tenant):
        found = covered(engine, row)
        if found.height:
            done["prior_intent_applications"] += announce(row["definition"], found)
        sent(engine, row["id"])
        done["batches"] += 1
        done["offers"] += found.height
        log.warning(
            "announced %d offers of %s in %s left unsent by a stopped publish",
            found.height,
            row["service_id"],
            row["tenant"],
        )
    return done


def unsent_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(announcements).where(announcements.c.sent_at.is_(None))
            ).scalar_one()
        )
