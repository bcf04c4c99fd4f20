"""Nonces recorded in a store off the event loop, concurrent requests sharing one transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol


class BatchNonceStore(Protocol):
    def seen_many(self, items: Sequence[tuple[str, str, int]]) -> list[bool]:
        """For each (key_id, nonce, created): True the first time it is seen within the window."""
        ...


class NonceRecorder:
    """Records nonces on one worker thread; while a transaction commits, the next batch gathers.

    A caller learns whether its nonce is new only after the transaction that recorded it has committed, so an
    answer never leaves before its nonce is durable."""

    def __init__(self, store: BatchNonceStore):
        self.store = store
        self._pending: list[tuple[tuple[str, str, int], asyncio.Future[bool]]] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nonce-record")
        self._writer: asyncio.Task[None] | None = None
        self.batches_written = 0

    async def seen_once(self, key_id: str, nonce: str, created: int) -> bool:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()
        self._pending.append(((key_id, nonce, created), done))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_all())
        return await done

    async def _write_all(self) -> None:
        loop = asyncio.get_running_loop()
        taken: list[tuple[tuple[str, str, int], asyncio.Future[bool]]] = []
        try:
            while self._pending:
                taken, self._pending = self._pending, []
                try:
                    answers = await loop.run_in_executor(self._executor, self.store.seen_many, [i for i, _ in taken])
                except Exception as exc:  # every caller of the failed transaction learns it failed
                    for _, done in taken:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                self.batches_written += 1
                for (_, done), answer in zip(taken, answers):
                    if not done.done():
                        done.set_result(answer)
                taken = []
        finally:
            # Cancelled: nobody may be left waiting forever, and an unrecorded nonce is never accepted.
            for _, done in [*taken, *self._pending]:
                if not done.done():
                    done.set_exception(RuntimeError("the nonce recorder stopped"))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
