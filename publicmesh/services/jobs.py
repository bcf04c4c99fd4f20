"""The publish as a work queue: one job per municipality, taken by any number of publisher workers.

A worker takes a job under a lease and renews it while it works; a job is done only once its offers are written
and announced (publish_queue.publish_one), so a worker killed in the middle leaves a job that another takes again
when the lease ends. Doing a job twice creates nothing twice: offers are unique per unit, notices per key, and
the outbox finishes announcements (announcements). The semantics are those of a JetStream work-queue stream
(a lease is ``ack_wait``, renewing it ``in_progress``, done an ack); ``StoreJobs`` keeps the queue in the services
part's store, for the embedded mesh and for PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

import orjson
from sqlalchemy import Engine, and_, func, insert, or_, select, update

from publicmesh.services.store import publish_jobs, utc_now


@dataclass(frozen=True)
class Job:
    id: str
    publish_id: str
    tenant: str
    definition: dict
    attempt: int


class PublishJobs(Protocol):
    def put(self, publish_id: str, definition: dict, tenants: list[str]) -> int:
        """One job per municipality (a job already put is left as it is); how many are new."""
        ...

    def take(self, worker: str, lease: dt.timedelta) -> Job | None:
        """The first job waiting (or whose lease ended), leased to ``worker``; None when there is none."""
        ...

    def renew(self, job: Job, worker: str, lease: dt.timedelta) -> bool:
        """The lease extended; False if the job is no longer this worker's (its lease ended and it was taken)."""
        ...

    def done(self, job: Job, worker: str, result: dict) -> bool:
        """The job done with its figures; False if another worker had taken it meanwhile (then its result counts)."""
        ...

    def progress(self, publish_id: str) -> dict[str, dict | None]:
        """Each municipality of the publish and its result (None while not done)."""
        ...


class StoreJobs:
    """The work queue in the services store. Taking a job is one conditional UPDATE: of two workers racing for the
    same job, one changes the row and the other finds nothing changed and tries the next."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def put(self, publish_id: str, definition: dict, tenants: list[str]) -> int:
        plain = orjson.loads(orjson.dumps(definition))  # dates as ISO text, as JSON has them
        with self.engine.begin() as conn:
            have = set(
                conn.execute(select(publish_jobs.c.tenant).where(publish_jobs.c.publish_id == publish_id)).scalars()
            )
            new = [t for t in tenants if t not in have]
            if new:
                conn.execute(
                    insert(publish_jobs),
                    [
                        {
                            "id": f"{publish_id}:{t}",
                            "publish_id": publish_id,
                            "tenant": t,
                            "definition": plain,
                            "state": "queued",
                            "attempts": 0,
                            "created_at": utc_now(),
                        }
                        for t in new
                    ],
                )
        return len(new)

    def take(self, worker: str, lease: dt.timedelta) -> Job | None:
        for _ in range(8):  # another worker may take the job found first: look again
            now = utc_now()
            waiting = or_(
                publish_jobs.c.state == "queued",
                and_(publish_jobs.c.state == "taken", publish_jobs.c.lease_until < now),
            )
            with self.engine.begin() as conn:
                row = conn.execute(
                    select(publish_jobs.c.id, publish_jobs.c.attempts)
                    .where(waiting)
                    .order_by(publish_jobs.c.created_at, publish_jobs.c.id)
                    .limit(1)
                ).first()
                if row is None:
                    return None
                taken = conn.execute(
                    update(publish_jobs)
                    .where(publish_jobs.c.id == row.id, publish_jobs.c.attempts == row.attempts, waiting)
                    .values(state="taken", worker=worker, lease_until=now + lease, attempts=row.attempts + 1)
                )
                if taken.rowcount == 1:
                    job = conn.execute(select(publish_jobs).where(publish_jobs.c.id == row.id)).mappings().one()
                    return Job(job["id"], job["publish_id"], job["tenant"], job["definition"], job["attempts"])
        return None

    def renew(self, job: Job, worker: str, lease: dt.timedelta) -> bool:
        with self.engine.begin() as conn:
            return (
                conn.execute(
                    update(publish_jobs).where(*self._held(job, worker)).values(lease_until=utc_now() + lease)
                ).rowcount
                == 1
            )

    def done(self, job: Job, worker: str, result: dict) -> bool:
        with self.engine.begin() as conn:
            return (
                conn.execute(
                    update(publish_jobs)
                    .where(*self._held(job, worker))
                    .values(state="done", result=result, done_at=utc_now(), lease_until=None)
                ).rowcount
                == 1
            )

    def progress(self, publish_id: str) -> dict[str, dict | None]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(publish_jobs.c.tenant, publish_jobs.c.state, publish_jobs.c.result).where(
                    publish_jobs.c.publish_id == publish_id
                )
            ).all()
        return {r.tenant: (r.result if r.state == "done" else None) for r in rows}

    def attempts(self, publish_id: str) -> int:
        """How many times the publish's jobs were taken (more than its municipalities: some were taken again)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.coalesce(func.sum(publish_jobs.c.attempts), 0)).where(
                        publish_jobs.c.publish_id == publish_id
                    )
                ).scalar_one()
            )

    @staticmethod
    def _held(job: Job, worker: str):
        return (
            publish_jobs.c.id == job.id,
            publish_jobs.c.state == "taken",
            publish_jobs.c.worker == worker,
            publish_jobs.c.attempts == job.attempt,
        )
