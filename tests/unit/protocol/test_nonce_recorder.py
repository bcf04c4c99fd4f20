"""The nonce recorder: concurrent requests share a transaction, each learns its own answer only once it committed."""

from __future__ import annotations

import asyncio

from publicmesh.protocol.nonces import NonceRecorder


class Store:
    def __init__(self, fail: bool = False):
        self.seen: set[tuple[str, str]] = set()
        self.batches: list[int] = []
        self.fail = fail

    def seen_many(self, items):
        if self.fail:
            raise OSError("disk full")
        self.batches.append(len(items))
        answers = []
        for key_id, nonce, _ in items:
            answers.append((key_id, nonce) not in self.seen)
            self.seen.add((key_id, nonce))
        return answers


def test_concurrent_nonces_share_batches_and_a_replay_is_refused():
    store = Store()
    recorder = NonceRecorder(store)

    async def run():
        first = await asyncio.gather(*(recorder.seen_once("k", f"n{i}", 0) for i in range(50)))
        again = await recorder.seen_once("k", "n7", 0)
        return first, again

    try:
        first, again = asyncio.run(run())
    finally:
        recorder.close()
    assert first == [True] * 50 and again is False
    assert sum(store.batches) == 51 and len(store.batches) <= 3  # one transaction for the 50 that came together


def test_a_failed_transaction_fails_every_caller_in_it():
    recorder = NonceRecorder(Store(fail=True))

    async def run():
        return await asyncio.gather(*(recorder.seen_once("k", f"n{i}", 0) for i in range(3)), return_exceptions=True)

    try:
        answers = asyncio.run(run())
    finally:
        recorder.close()
    assert all(isinstance(a, OSError) for a in answers)  # none is taken for a first use
