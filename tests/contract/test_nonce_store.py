"""The nonce store's contract on every backend: a nonce is accepted once within its window, across processes'
engines, and expired nonces are purged in batches."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from publicmesh.storage.nonces import SqlNonceStore, nonces

pytestmark = pytest.mark.storage


class Clock:
    def __init__(self, now: float = 1_800_000_000):
        self.now = now

    def __call__(self) -> float:
        return self.now


def count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(nonces)).scalar_one()


def test_a_nonce_is_seen_once_per_key(engine):
    store = SqlNonceStore(engine, 30)
    assert store.seen_once("MUNI/012084/child-allowance", "n1", 1_800_000_000)
    assert not store.seen_once("MUNI/012084/child-allowance", "n1", 1_800_000_000)
    assert store.seen_once("GOV/nta/national-tax", "n1", 1_800_000_000)  # another signer's nonce is its own


def test_a_new_store_on_the_same_database_still_refuses_the_replay(engine):
    """What a restarted hub sees: the nonce outlives the process that recorded it."""
    clock = Clock()
    assert SqlNonceStore(engine, 30, clock).seen_once("k", "n", int(clock.now))
    engine.dispose()
    clock.now += 7
    assert not SqlNonceStore(engine, 30, clock).seen_once("k", "n", int(clock.now) - 7)


def test_a_batch_answers_each_item_and_a_repeat_within_it_is_a_replay(engine):
    store = SqlNonceStore(engine, 30)
    assert store.seen_once("k", "old", 1_800_000_000)
    assert store.seen_many([("k", "a", 0), ("k", "old", 0), ("k", "b", 0), ("k", "a", 0)]) == [
        True,
        False,
        True,
        False,
    ]


def test_an_expired_nonce_is_purged_in_batches_and_may_be_seen_again(engine):
    clock = Clock()
    store = SqlNonceStore(engine, 30, clock)
    created = int(clock.now)
    assert store.seen_many([("k", f"n{i}", created) for i in range(25)]) == [True] * 25
    clock.now += 30  # still within the window (and its second of slack): kept
    assert store.purge(batch=10) == 0 and not store.seen_once("k", "n0", created)
    clock.now += 2
    assert store.seen_once("k", "n0", int(clock.now))  # expired but not purged yet: it gives way
    assert store.purge(batch=10) == 24 and count(engine) == 1


def test_concurrent_replays_accept_exactly_one(engine):
    stores = [SqlNonceStore(engine, 30) for _ in range(4)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: stores[i % 4].seen_once("k", "same", 1_800_000_000), range(16)))
    assert answers.count(True) == 1
