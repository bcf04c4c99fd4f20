"""Group commit for the audit log: concurrent coroutines share one transaction per batch."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from publicmesh.audit.log import AuditLog
from publicmesh.audit.records import ExchangeRecord, SubjectBatch

_Item = ExchangeRecord | SubjectBatch
_Request = tuple[list[_Item], "asyncio.Future[list[int]]", int]  # (items, future, weight: records and subjects)


class AsyncAuditAppender:
    """Collects appends for up to ``max_delay_s`` (or ``max_batch`` records) and commits them together.

    A caller's positions are returned only after the batch's transaction has committed, so an
    acknowledged exchange is durably recorded. Writes run one at a time on a single worker thread.
    """

    def __init__(self, log: AuditLog, max_batch: int = 1024, max_delay_s: float = 0.002) -> None:
        if max_batch < 1 or max_delay_s < 0:
            raise ValueError("max_batch must be positive and max_delay_s non-negative")
        self.log = log
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self._pending: deque[_Request] = deque()
        self._pending_records = 0
        self._in_flight: list[_Request] = []
        self._writer: asyncio.Task[None] | None = None
        # Neither starts anything yet: an event binds to the loop that first waits on it, and the executor
        # starts its thread on the first write.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-append")
        self._wakeup, self._full = asyncio.Event(), asyncio.Event()
        self._closing = False
        self.batches_written = 0

    async def start(self) -> None:
        """Start the writer task (done on first append as well)."""
        if self._closing:
            raise RuntimeError("the audit appender is closed")
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_loop(), name="audit-appender")

    async def close(self) -> None:
        """Write everything still pending, then stop."""
        self._closing = True
        if self._writer is None:
            return
        self._wakeup.set()
        self._full.set()
        await self._writer
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> AsyncAuditAppender:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def append(self, record: ExchangeRecord) -> int:
        """Append one record; returns its position once committed."""
        return (await self.append_many([record]))[0]

    async def append_many(self, batch: Sequence[_Item]) -> list[int]:
        """Append records (a SubjectBatch is one) at consecutive positions; returns them once committed."""
        batch = list(batch)
        for record in batch:
            # Checked here so one malformed record cannot fail the whole group it would be committed with.
            if not isinstance(record, (ExchangeRecord, SubjectBatch)):
                raise TypeError(f"expected ExchangeRecord, got {type(record).__name__}")
        if not batch:
            return []
        # A batch of many subjects is one record but weighs as its subjects, so a commit stays a bounded size.
        count = sum(len(item) if isinstance(item, SubjectBatch) else 1 for item in batch)
        await self.start()
        done: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._pending.append((batch, done, count))
        self._pending_records += count
        self._wakeup.set()
        if self._pending_records >= self.max_batch:
            self._full.set()
        # A cancelled caller does not un-log its record: the batch may already be committing.
        return await done

    async def _write_loop(self) -> None:
        try:
            while True:
                await self._wakeup.wait()
                if not self._pending:
                    if self._closing:
                        return
                    self._wakeup.clear()
                    continue
                await self._gather()
                await self._write(self._take())
        finally:
            # Only reached when the task is cancelled or broken; nobody may be left waiting forever.
            self._fail_pending(RuntimeError("the audit appender stopped; this record may not have been written"))

    async def _gather(self) -> None:
        # Let every coroutine made runnable in this tick enqueue, then wait briefly for a fuller batch.
        await asyncio.sleep(0)
        if self._closing or self.max_delay_s == 0 or self._pending_records >= self.max_batch:
            return
        self._full.clear()
        try:
            await asyncio.wait_for(self._full.wait(), self.max_delay_s)
        except TimeoutError:
            pass

    def _take(self) -> list[_Request]:
        taken: list[_Request] = []
        count = 0
        # Whole requests only: a caller's records stay consecutive and commit together.
        while self._pending and (not taken or count + self._pending[0][2] <= self.max_batch):
            request = self._pending.popleft()
            taken.append(request)
            count += request[2]
        self._pending_records -= count
        return taken

    async def _write(self, taken: list[_Request]) -> None:
        flat = [item for batch, _, _ in taken for item in batch]
        loop = asyncio.get_running_loop()
        self._in_flight = taken
        try:
            positions = await loop.run_in_executor(self._executor, self.log.append_many, flat)
        except Exception as exc:  # every caller of the failed transaction learns it failed
            self._in_flight = []
            for _, done, _ in taken:
                if not done.done():
                    done.set_exception(exc)
            return
        # (On cancellation _in_flight is left set, so the loop's cleanup fails these callers too.)
        self._in_flight = []
        self.batches_written += 1
        offset = 0
        for items, done, _ in taken:
            if not done.done():
                done.set_result(positions[offset : offset + len(items)])
            offset += len(items)

    def _fail_pending(self, exc: Exception) -> None:
        for _, done, _ in [*self._in_flight, *self._pending]:
            if not done.done():
                done.set_exception(exc)
        self._in_flight = []
        self._pending.clear()
        self._pending_records = 0
