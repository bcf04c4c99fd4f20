"""The publish's work queue in the services store: a job per municipality, taken by one worker at a time under a
lease, taken again when its worker stops renewing it, done once (a late worker's done does not count)."""

from __future__ import annotations

import datetime as dt

from publicmesh.services.jobs import StoreJobs
from publicmesh.services.store import metadata

DOC = {"id": "svc", "version": 1, "as_of": dt.date(2026, 4, 1)}
LEASE = dt.timedelta(seconds=30)


def test_each_job_is_taken_by_one_worker_and_done_once(engine):
    metadata.create_all(engine)
    jobs = StoreJobs(engine)
    assert jobs.put("p1", DOC, ["012084", "131016"]) == 2
    assert jobs.put("p1", DOC, ["012084", "131016"]) == 0  # put again: nothing new
    first, second = jobs.take("a", LEASE), jobs.take("b", LEASE)
    assert {first.tenant, second.tenant} == {"012084", "131016"} and jobs.take("c", LEASE) is None
    assert first.definition["as_of"] == "2026-04-01" and first.attempt == 1
    assert jobs.progress("p1") == {"012084": None, "131016": None}
    assert not jobs.done(first, "b", {"eligible": 1})  # not b's job
    assert jobs.done(first, "a", {"eligible": 1}) and not jobs.done(first, "a", {"eligible": 2})
    assert jobs.progress("p1")[first.tenant] == {"eligible": 1}
    assert jobs.renew(second, "b", LEASE) and not jobs.renew(first, "a", LEASE)


def test_a_job_whose_lease_ended_is_taken_again_and_the_first_worker_no_longer_counts(engine):
    metadata.create_all(engine)
    jobs = StoreJobs(engine)
    jobs.put("p2", DOC, ["012084"])
    dead = jobs.take("dead", dt.timedelta(seconds=-1))  # its lease already over: the worker died
    again = jobs.take("alive", LEASE)
    assert again is not None and again.tenant == dead.tenant and again.attempt == 2
    assert not jobs.renew(dead, "dead", LEASE) and not jobs.done(dead, "dead", {"eligible": 9})
    assert jobs.done(again, "alive", {"eligible": 3})
    assert jobs.progress("p2") == {"012084": {"eligible": 3}} and jobs.attempts("p2") == 2
    assert jobs.take("late", LEASE) is None  # a done job is never taken again
