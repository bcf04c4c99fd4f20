"""What the embedded transport adds to the contract: how long it keeps an event, and NATS-style topic filters."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import create_engine, func, select

from publicmesh.events import ConsumerConfig, Event, StoreTransport, topic_matches
from publicmesh.events.store import stream


class Clock:
    def __init__(self):
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _event(n: int, topic: str) -> Event:
    return Event(f"P:{n}", topic, topic.split(".")[0], "P", f"S{n}", {"n": n}, "2026-12-07T00:00:00+00:00")


async def _take(transport: StoreTransport, subscriber: str, *, ack: bool = True) -> list[int]:
    page = await transport.fetch(subscriber, 100)
    if ack:
        await transport.ack(subscriber, [d.event.id for d in page])
    return [d.event.payload["n"] for d in page]


def _kept(transport: StoreTransport) -> int:
    with transport.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(stream)).scalar_one()


def test_an_event_is_kept_until_every_interested_consumer_acked_it_and_the_duplicate_window_passed():
    async def scenario():
        clock = Clock()
        transport = StoreTransport(create_engine("sqlite://"), duplicate_window=120, purge_every=3600, clock=clock)
        await transport.subscribe("all", [">"], ConsumerConfig())
        await transport.subscribe("births", ["birth.>"], ConsumerConfig())
        await transport.publish([_event(1, "birth.a"), _event(2, "death.a"), _event(3, "birth.b")])
        assert await _take(transport, "all") == [1, 2, 3]
        assert await _take(transport, "births", ack=False) == [1, 3]
        await transport.ack("births", ["P:1"])
        assert transport.purge() == 0  # within the duplicate window
        assert await transport.publish([_event(1, "birth.a")]) == 0

        clock.now += 121
        assert transport.purge() == 2  # 1 (acked by both) and 2 (no one else wants a death); 3 awaits an ack
        assert _kept(transport) == 1
        await transport.ack("births", ["P:3"])
        assert transport.purge() == 1
        assert _kept(transport) == 0

    asyncio.run(scenario())


def test_a_consumer_that_never_fetched_keeps_what_it_may_want():
    async def scenario():
        clock = Clock()
        transport = StoreTransport(create_engine("sqlite://"), duplicate_window=0, clock=clock)
        await transport.subscribe("fast", [">"], ConsumerConfig())
        await transport.subscribe("away", ["death.>"], ConsumerConfig())
        await transport.publish([_event(1, "birth.a"), _event(2, "death.a")])
        assert await _take(transport, "fast") == [1, 2]
        clock.now += 1
        assert transport.purge() == 1
        assert await _take(transport, "away") == [2]

    asyncio.run(scenario())


def test_a_purge_scans_a_bounded_batch_and_goes_on_past_what_a_consumer_holds_back():
    async def scenario():
        clock = Clock()
        transport = StoreTransport(create_engine("sqlite://"), duplicate_window=0, purge_batch=2, clock=clock)
        await transport.subscribe("down", ["death.>"], ConsumerConfig())
        await transport.subscribe("up", [">"], ConsumerConfig())
        await transport.publish([_event(1, "death.a")] + [_event(n, "birth.a") for n in range(2, 7)])
        assert await _take(transport, "up") == [1, 2, 3, 4, 5, 6]
        clock.now += 1
        assert [transport.purge() for _ in range(4)] == [1, 2, 2, 0]  # 1 is the down consumer's: kept
        assert _kept(transport) == 1
        assert await _take(transport, "down") == [1]

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("pattern", "topic", "matches"),
    [
        ("a.b.c", "a.b.c", True),
        ("a.*.c", "a.b.c", True),
        ("a.*.c", "a.b.d", False),
        ("a.*", "a.b.c", False),
        ("a.>", "a.b.c", True),
        ("a.>", "a", False),
        (">", "a", True),
        ("a.b", "a.b.c", False),
        ("a.b.c", "a.b", False),
        ("a_%.b", "ax.b", False),  # what SQL LIKE would take for wildcards is literal here
    ],
)
def test_topic_filters_follow_nats_subjects(pattern, topic, matches):
    assert topic_matches(pattern, topic) is matches


def test_sql_wildcards_in_a_filter_are_literal():
    async def scenario():
        transport = StoreTransport(create_engine("sqlite://"))
        await transport.subscribe("A", ["a_%.b"], ConsumerConfig())
        await transport.publish([_event(1, "ax.b"), _event(2, "a_%.b")])
        assert await _take(transport, "A") == [2]

    asyncio.run(scenario())


def test_a_star_takes_one_token_though_sql_like_would_take_more():
    async def scenario():
        clock = Clock()
        transport = StoreTransport(create_engine("sqlite://"), clock=clock)
        await transport.subscribe("A", ["a.*"], ConsumerConfig(ack_wait=5))
        await transport.publish([_event(1, "a.b.c"), _event(2, "a.b"), _event(3, "a.c.d")])
        assert await _take(transport, "A", ack=False) == [2]
        clock.now += 6
        assert await _take(transport, "A") == [2]  # and it was pending like any other
        clock.now += 6
        assert await _take(transport, "A") == []

    asyncio.run(scenario())
