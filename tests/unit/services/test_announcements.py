"""The offers' outbox: what a process killed between writing a municipality's offers and announcing them left is
announced by the next resume, once, and only the offers its row names."""

from __future__ import annotations

import datetime as dt

import polars as pl

from publicmesh.services import announcements
from publicmesh.services import offers as publish
from publicmesh.services.store import metadata

from .test_offers import DOC, frame

DOC = {**DOC, "as_of": dt.date(2026, 4, 1)}  # a date, as YAML gives it: the outbox keeps it as ISO text


class Announcer:
    def __init__(self):
        self.calls: list[tuple[dict, pl.DataFrame]] = []

    def __call__(self, doc: dict, fresh: pl.DataFrame) -> int:
        self.calls.append((doc, fresh))
        return 0


def rows(n: int, start: int = 0):
    return frame([(f"氏名 {i}", i, None, None, i) for i in range(start, start + n)]).with_columns(
        pl.Series("subject", [f"S{i:021d}" for i in range(start, start + n)]),
        pl.Series("household", [f"H{i:021d}" for i in range(start, start + n)]),
    )


def test_offers_written_and_not_announced_are_announced_by_the_next_resume(engine):
    metadata.create_all(engine)
    done = announcements.opened(engine, DOC, "012084")  # an earlier municipality, announced
    publish.store_offers(engine, DOC, "012084", rows(3))
    announcements.sent(engine, done)
    killed = announcements.opened(engine, DOC, "012025")  # killed after its offers were written
    fresh = publish.store_offers(engine, DOC, "012025", rows(4, 10))
    announcements.written(engine, killed, fresh)
    writing = announcements.opened(engine, DOC, "012033")  # killed while writing: no last id
    publish.store_offers(engine, DOC, "012033", rows(2, 20))
    other = {**DOC, "id": "another-service"}
    announcements.opened(engine, other, "012084")  # killed before writing any offer

    announcer = Announcer()
    resumed = announcements.resume(engine, announcer, DOC["id"])
    assert resumed == {"batches": 2, "offers": 6, "prior_intent_applications": 0}
    (doc1, first), (doc2, second) = announcer.calls
    assert sorted(first["id"]) == sorted(fresh["id"]) and set(first["tenant"]) == {"012025"}
    assert second.height == 2 and set(second["tenant"]) == {"012033"}
    assert doc1["id"] == DOC["id"] and doc1["as_of"] == "2026-04-01" and doc1["notices"] == DOC["notices"]
    assert set(first.columns) >= {"id", "unit_key", "subject", "tenant", "amount_yen", "service_id"}
    assert writing and announcements.unsent(engine, DOC["id"]) == []

    assert announcements.resume(engine, Announcer(), DOC["id"])["batches"] == 0  # nothing twice
    assert announcements.unsent_count(engine) == 1  # the other service's row waits for its own resume
    assert announcements.resume(engine, announcer) == {"batches": 1, "offers": 0, "prior_intent_applications": 0}


def test_a_failed_announcement_stays_unsent(engine):
    metadata.create_all(engine)
    row = announcements.opened(engine, DOC, "012084")
    announcements.written(engine, row, publish.store_offers(engine, DOC, "012084", rows(2)))

    def fails(_doc, _fresh):
        raise ConnectionError("the hub is restarting")

    try:
        announcements.resume(engine, fails)
    except ConnectionError:
        pass
    assert [r["id"] for r in announcements.unsent(engine)] == [row]


def test_the_periodic_resume_leaves_a_live_publish_alone(engine):
    metadata.create_all(engine)
    row = announcements.opened(engine, DOC, "012084")  # a publish writing now
    assert announcements.unsent(engine, older_than=dt.timedelta(minutes=10)) == []
    assert [r["id"] for r in announcements.unsent(engine)] == [row]
    assert [r["id"] for r in announcements.unsent(engine, older_than=dt.timedelta(seconds=-1))] == [row]


def test_a_redone_job_finishes_only_its_own_municipality(engine):
    metadata.create_all(engine)
    for tenant, start in (("012084", 0), ("012025", 10)):
        row = announcements.opened(engine, DOC, tenant)
        announcements.written(engine, row, publish.store_offers(engine, DOC, tenant, rows(2, start)))
    announcer = Announcer()
    assert announcements.resume(engine, announcer, DOC["id"], tenant="012025")["batches"] == 1
    assert set(announcer.calls[0][1]["tenant"]) == {"012025"}
    assert [r["tenant"] for r in announcements.unsent(engine)] == ["012084"]
