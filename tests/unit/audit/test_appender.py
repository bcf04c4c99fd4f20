"""Group commit: many coroutines, few transactions, positions only after commit."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from timing import budget

from publicmesh.audit import AsyncAuditAppender, AuditLog, ExchangeRecord

pytestmark = pytest.mark.storage


@pytest.fixture
def store_name():
    return "audit"


@pytest.fixture
def log(engine):
    return AuditLog(engine, Ed25519PrivateKey.generate())


def record(i: int) -> ExchangeRecord:
    return ExchangeRecord(
        kind="event",
        at="2026-11-23T10:00:00.000Z",
        consumer="PREF/13/health",
        provider="MUNI/131016/tax",
        dataset="income",
        attributes=("taxable_income",),
        purpose="国保税の算定",
        legal_basis="番号法第19条第8号",
        subject=f"ap-{i % 11}",
        request_id=f"req-{i}",
        outcome="ok",
    )


class Recording:
    """Wraps a log to see each transaction's size and when it committed."""

    def __init__(self, log: AuditLog, fail: bool = False, pause_s: float = 0.0) -> None:
        self.log, self.fail, self.pause_s = log, fail, pause_s
        self.batches: list[int] = []
        self.committed = threading.Event()

    def append_many(self, records):
        time.sleep(self.pause_s)
        if self.fail:
            raise RuntimeError("disk on fire")
        positions = self.log.append_many(records)
        self.batches.append(len(records))
        self.committed.set()
        return positions


def test_many_concurrent_appends_are_grouped_and_consecutive(log, capsys):
    n = 5000

    async def main() -> tuple[list[int], float, int]:
        async with AsyncAuditAppender(log) as appender:
            started = time.perf_counter()
            positions = await asyncio.gather(*(appender.append(record(i)) for i in range(n)))
            return positions, time.perf_counter() - started, appender.batches_written

    positions, elapsed, batches = asyncio.run(main())
    assert sorted(positions) == list(range(n))
    assert all(log.get(p) == record(i) for i, p in list(enumerate(positions))[::499])
    assert batches < n / 50  # group commit happened
    assert log.verify().ok
    with capsys.disabled():
        print(f"\n[audit] {n} concurrent appends: {elapsed:.2f}s = {n / elapsed:,.0f}/s in {batches} transactions")
    assert elapsed < budget(n / 1000)  # over 1,000 appends a second


def test_positions_arrive_only_after_commit(log):
    recording = Recording(log, pause_s=0.05)

    async def main() -> None:
        async with AsyncAuditAppender(recording) as appender:
            task = asyncio.create_task(appender.append(record(0)))
            await asyncio.sleep(0.02)
            assert not task.done() and not recording.committed.is_set()
            assert await task == 0
            assert recording.committed.is_set()
            # The acknowledged record is visible to any other reader of the store.
            assert AuditLog(log.engine, None).get(0) == record(0)

    asyncio.run(main())


def test_batches_respect_max_batch_and_keep_requests_whole(log):
    recording = Recording(log)

    async def main() -> list[list[int]]:
        async with AsyncAuditAppender(recording, max_batch=16, max_delay_s=0.01) as appender:
            requests = [[record(i * 5 + j) for j in range(5)] for i in range(20)]
            return await asyncio.gather(*(appender.append_many(r) for r in requests))

    results = asyncio.run(main())
    assert all(r == list(range(r[0], r[0] + 5)) for r in results)
    assert sorted(p for r in results for p in r) == list(range(100))
    assert max(recording.batches) <= 16 and len(recording.batches) >= 100 // 16


def test_close_flushes_everything_pending(log):
    async def main() -> list[int]:
        appender = AsyncAuditAppender(log, max_delay_s=0.05)
        tasks = [asyncio.create_task(appender.append(record(i))) for i in range(300)]
        await asyncio.sleep(0)
        await appender.close()
        assert all(t.done() for t in tasks)
        with pytest.raises(RuntimeError):
            await appender.append(record(0))
        return [t.result() for t in tasks]

    assert sorted(asyncio.run(main())) == list(range(300))
    assert log.size() == 300


def test_a_failed_transaction_fails_its_callers_and_not_later_ones(log):
    recording = Recording(log, fail=True)

    async def main() -> None:
        async with AsyncAuditAppender(recording) as appender:
            results = await asyncio.gather(*(appender.append(record(i)) for i in range(10)), return_exceptions=True)
            assert all(isinstance(r, RuntimeError) for r in results)
            recording.fail = False
            assert await appender.append(record(10)) == 0

    asyncio.run(main())


def test_malformed_requests_are_refused_before_queueing(log):
    async def main() -> None:
        async with AsyncAuditAppender(log) as appender:
            with pytest.raises(TypeError):
                await appender.append({"kind": "query"})
            assert await appender.append_many([]) == []

    asyncio.run(main())
    assert log.size() == 0
