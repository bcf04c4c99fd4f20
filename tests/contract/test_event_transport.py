"""The event transport's contract: what the hub relies on from any transport, the embedded store (on SQLite and,
when PUBLICMESH_TEST_DATABASE_URL is set, PostgreSQL) and NATS JetStream (when PUBLICMESH_TEST_NATS_URL is set)
alike.

Only the interface is used here, with short ack waits and delays measured on a real clock, so a JetStream
implementation (a stream, a durable pull consumer per subscriber) runs these tests unchanged.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from backends import NATS_URL, require_nats

from publicmesh.events import ConsumerConfig, Event, EventTransport, StoreTransport
from publicmesh.events.jetstream import JetStreamTransport
from publicmesh.settings import Settings
from publicmesh.storage import drop_store, engine_for

pytestmark = [pytest.mark.anyio, pytest.mark.storage]

DATABASE_URL = os.environ.get("PUBLICMESH_TEST_DATABASE_URL", "")
IMPLEMENTATIONS = ["store-sqlite"] + (["store-postgresql"] if DATABASE_URL.startswith("postgresql") else [])
IMPLEMENTATIONS += ["jetstream"]  # skipped without a NATS server (failed under CI)
QUICK = ConsumerConfig(ack_wait=0.6)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(params=IMPLEMENTATIONS)
async def open_transport(request, tmp_path) -> AsyncIterator[Callable[[], EventTransport]]:
    """Opens the transport under test; every call is a new connection to the same stream, as a restarted process."""
    if request.param == "jetstream":
        require_nats()
        tag, connections = uuid.uuid4().hex[:12], []

        def connect() -> EventTransport:
            connections.append(JetStreamTransport(NATS_URL, stream=f"TEST_{tag}", prefix=f"test-{tag}"))
            return connections[-1]

        yield connect
        for connection in connections:
            await connection.close()
        await JetStreamTransport(NATS_URL, stream=f"TEST_{tag}").delete_stream()
        return
    if request.param == "store-postgresql":
        settings, store = Settings(data_dir=tmp_path, database_url=DATABASE_URL), f"events-test-{uuid.uuid4().hex[:12]}"
    else:
        settings, store = Settings(data_dir=tmp_path, database_url=""), "events"
    engines = []

    def open_one() -> EventTransport:
        engines.append(engine_for(store, settings))
        return StoreTransport(engines[-1])

    yield open_one
    for engine in engines:
        engine.dispose()
    if request.param == "store-postgresql":
        drop_store(store, settings)


@pytest.fixture
def transport(open_transport) -> EventTransport:
    return open_transport()


def event(n: int, topic: str = "MUNI.012084.resident-registry.birth.012084", subject: str = "") -> Event:
    return Event(
        id=f"MUNI/012084/resident-registry:{n}",
        topic=topic,
        kind=topic.split(".")[3],
        source="MUNI/012084/resident-registry",
        subject=subject or f"S{n}",
        payload={"n": n, "name": "陽葵"},
        occurred_at="2026-12-07T00:00:00+00:00",
    )


def numbers(deliveries) -> list[int]:
    return [d.event.payload["n"] for d in deliveries]


async def fetch_all(transport: EventTransport, subscriber: str, *, ack: bool = True) -> list[int]:
    """Everything the subscriber can have now, a page at a time, acked unless told otherwise."""
    got = []
    while page := await transport.fetch(subscriber, 4):
        got += numbers(page)
        if ack:
            await transport.ack(subscriber, [d.event.id for d in page])
    return got


async def test_an_event_comes_back_whole(transport):
    await transport.subscribe("GOV/mhlw/health-insurance", ["MUNI.*.resident-registry.birth.*"], QUICK)
    await transport.publish([event(1)])
    [delivery] = await transport.fetch("GOV/mhlw/health-insurance", 10)
    assert delivery.event == event(1)
    assert delivery.attempt == 1


async def test_a_second_publish_of_an_id_is_a_no_op(transport):
    await transport.subscribe("A", [">"], QUICK)
    assert await transport.publish([event(1), event(2)]) == 2
    assert await transport.publish([event(2), event(3), event(3)]) == 1
    assert await fetch_all(transport, "A") == [1, 2, 3]


async def test_every_subscriber_gets_every_event_its_topics_match(transport):
    await transport.subscribe("A", ["MUNI.012084.resident-registry.>"], QUICK)
    await transport.subscribe("B", ["MUNI.*.resident-registry.birth.*"], QUICK)
    await transport.subscribe("C", ["GOV.nta.national-tax.income-update.012084"], QUICK)
    await transport.publish([event(n) for n in range(1, 6)] + [event(6, "MUNI.012084.resident-registry.death.012084")])
    assert await fetch_all(transport, "A") == [1, 2, 3, 4, 5, 6]
    assert await fetch_all(transport, "B") == [1, 2, 3, 4, 5]
    assert await fetch_all(transport, "C") == []


async def test_an_acked_event_is_not_delivered_again(transport):
    await transport.subscribe("A", [">"], QUICK)
    await transport.publish([event(1), event(2)])
    page = await transport.fetch("A", 10)
    await transport.ack("A", [page[0].event.id])
    await asyncio.sleep(QUICK.ack_wait + 0.3)
    assert [(d.event.payload["n"], d.attempt) for d in await transport.fetch("A", 10)] == [(2, 2)]


async def test_an_event_not_acked_comes_again_after_the_ack_wait(transport):
    await transport.subscribe("A", [">"], ConsumerConfig(ack_wait=1.0))
    await transport.publish([event(1)])
    assert numbers(await transport.fetch("A", 10)) == [1]
    assert await transport.fetch("A", 10) == []  # still the first delivery's to ack
    await asyncio.sleep(1.3)
    again = await transport.fetch("A", 10)
    assert [(d.event, d.attempt) for d in again] == [(event(1), 2)]


async def test_a_nak_brings_an_event_again_after_its_delay(transport):
    await transport.subscribe("A", [">"], ConsumerConfig(ack_wait=30.0))
    await transport.publish([event(1), event(2)])
    page = await transport.fetch("A", 10)
    await transport.nak("A", [page[0].event.id], delay=1.0)
    await transport.nak("A", [page[1].event.id])
    assert [(d.event.payload["n"], d.attempt) for d in await transport.fetch("A", 10)] == [(2, 2)]
    await asyncio.sleep(0.3)
    assert await transport.fetch("A", 10) == []  # the first's delay is not over; the second awaits its ack
    await asyncio.sleep(1.0)
    assert [(d.event.payload["n"], d.attempt) for d in await transport.fetch("A", 10)] == [(1, 2)]


async def test_backoff_spaces_the_redeliveries(transport):
    await transport.subscribe("A", [">"], ConsumerConfig(backoff=(0.4, 1.5)))
    await transport.publish([event(1)])
    assert [d.attempt for d in await transport.fetch("A", 10)] == [1]
    await asyncio.sleep(0.7)
    assert [d.attempt for d in await transport.fetch("A", 10)] == [2]
    await asyncio.sleep(0.7)
    assert await transport.fetch("A", 10) == []  # the second delivery waits 1.5 s
    await asyncio.sleep(1.2)
    assert [d.attempt for d in await transport.fetch("A", 10)] == [3]


async def test_a_fetch_waits_for_an_event_to_arrive(transport):
    await transport.subscribe("A", [">"], QUICK)
    started = time.monotonic()
    assert await transport.fetch("A", 10, wait=0.3) == []
    assert time.monotonic() - started >= 0.25

    async def publish_soon():
        await asyncio.sleep(0.2)
        await transport.publish([event(1)])

    publishing = asyncio.create_task(publish_soon())
    assert numbers(await transport.fetch("A", 10, wait=5.0)) == [1]
    await publishing


async def test_a_subscriber_that_was_away_gets_what_it_missed(open_transport):
    hub, patient = open_transport(), ConsumerConfig(ack_wait=2.0)  # longer than the restart takes
    await hub.subscribe("A", [">"], patient)
    await hub.subscribe("B", [">"], patient)
    await hub.publish([event(1), event(2)])
    assert await fetch_all(hub, "B") == [1, 2]
    assert numbers(await hub.fetch("A", 1)) == [1]  # fetched, then the process dies before its ack
    await hub.publish([event(3)])

    restarted = open_transport()
    await restarted.publish([event(4)])
    assert await fetch_all(restarted, "B") == [3, 4]
    assert await fetch_all(restarted, "A") == [2, 3, 4]
    await asyncio.sleep(patient.ack_wait + 0.3)
    assert await fetch_all(restarted, "A") == [1]  # what it fetched and never acked came again


async def test_subscribing_again_keeps_the_consumers_position(open_transport):
    hub = open_transport()
    await hub.subscribe("A", [">"], QUICK)
    await hub.publish([event(1), event(2)])
    assert await fetch_all(hub, "A") == [1, 2]
    restarted = open_transport()
    await restarted.subscribe("A", [">"], QUICK)  # as every process does when it starts
    await restarted.publish([event(3)])
    assert await fetch_all(restarted, "A") == [3]


async def test_a_restarted_relay_republishing_its_last_page_adds_nothing(open_transport):
    relay = open_transport()
    await relay.subscribe("A", [">"], QUICK)
    assert await relay.publish([event(1), event(2), event(3)]) == 3
    assert await fetch_all(relay, "A") == [1, 2, 3]  # acked, so gone from the stream: its ids are still known
    restarted = open_transport()  # died before recording its position: publishes the same page again
    assert await restarted.publish([event(1), event(2), event(3), event(4)]) == 1
    assert await fetch_all(restarted, "A") == [4]


async def test_new_topics_take_effect_from_the_consumers_position(open_transport):
    hub = open_transport()
    await hub.subscribe("A", ["MUNI.*.resident-registry.birth.*"], QUICK)
    await hub.publish([event(1), event(2, "MUNI.012084.resident-registry.death.012084"), event(3)])
    assert await fetch_all(hub, "A") == [1, 3]
    restarted = open_transport()
    await restarted.subscribe("A", ["MUNI.*.resident-registry.birth.*", "MUNI.*.resident-registry.death.*"], QUICK)
    await restarted.publish([event(4, "MUNI.012084.resident-registry.death.012084"), event(5)])
    assert await fetch_all(restarted, "A") == [4, 5]
    await restarted.publish([event(6, "MUNI.012084.resident-registry.move-out.012084")])
    assert await fetch_all(restarted, "A") == []  # the filter that covers both topics matches it; they do not


async def test_what_was_fetched_before_new_topics_can_still_be_acked(transport):
    await transport.subscribe("A", ["MUNI.*.resident-registry.birth.*"], QUICK)
    await transport.publish([event(1)])
    [delivery] = await transport.fetch("A", 10)
    await transport.subscribe("A", ["MUNI.*.resident-registry.birth.*", "MUNI.*.resident-registry.death.*"], QUICK)
    await transport.ack("A", [delivery.event.id])
    await asyncio.sleep(QUICK.ack_wait + 0.3)
    assert await transport.fetch("A", 10) == []


async def test_a_fetch_for_a_subscriber_that_never_subscribed_is_refused(transport):
    with pytest.raises(LookupError):
        await transport.fetch("nobody", 10)


async def test_one_failing_subscriber_holds_nobody_back(transport):
    await transport.subscribe("failing", [">"], QUICK)
    await transport.subscribe("healthy", [">"], QUICK)
    await transport.publish([event(n) for n in range(1, 21)])
    for round_ in range(3):
        await transport.publish([event(100 + round_)])
        failed = await transport.fetch("failing", 8)
        assert numbers(failed) == [1, 2, 3, 4, 5, 6, 7, 8]
        await transport.nak("failing", [d.event.id for d in failed])
        backlog = list(range(1, 21)) if round_ == 0 else []
        assert await fetch_all(transport, "healthy") == backlog + [100 + round_]
    assert await fetch_all(transport, "failing") == list(range(1, 21)) + [100, 101, 102]  # none of its events lost


async def test_events_of_one_subject_come_in_publish_order(transport):
    await transport.subscribe("A", [">"], QUICK)
    published = [event(n, subject=f"S{n % 3}") for n in range(1, 31)]
    await transport.publish(published[:10])
    await transport.publish(published[10:])
    first = await transport.fetch("A", 7)
    await transport.nak("A", [d.event.id for d in first])  # a failed delivery: the same events come again first
    received = [d.event for d in first] + [e for page in await _pages(transport, "A") for e in page]
    redelivered = received[len(first) :]
    for subject in ("S0", "S1", "S2"):
        order = [e.payload["n"] for e in published if e.subject == subject]
        assert [e.payload["n"] for e in redelivered if e.subject == subject] == order


async def _pages(transport: EventTransport, subscriber: str) -> list[list[Event]]:
    pages = []
    while page := await transport.fetch(subscriber, 7):
        pages.append([d.event for d in page])
        await transport.ack(subscriber, [d.event.id for d in page])
    return pages
