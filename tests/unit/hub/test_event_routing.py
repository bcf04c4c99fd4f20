"""The hub's event router on a fake exchange and a fake clock: a subscriber that keeps failing holds nobody else
back, gets nothing twice, and gets everything it did not acknowledge once it answers again."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import create_engine, text

from publicmesh.events import StoreTransport
from publicmesh.hub import events
from publicmesh.hub.events import EventRouter
from publicmesh.hub.rules import EventRule
from publicmesh.protocol.members import MemberId

PROVIDER = MemberId.parse("GOV/nta/national-tax")
STUCK = MemberId.parse("MUNI/012084/local-tax")
HEALTHY = MemberId.parse("MUNI/131016/local-tax")


def _rule(event: str, subscriber: MemberId) -> EventRule:
    return EventRule(
        id=f"{event}-rule",
        provider=str(PROVIDER),
        event=event,
        subscriber=str(subscriber),
        attributes=("amount",),
        pseudonym_fields=(),
        legal_basis="test",
        affair="test",
    )


@dataclass
class Member:
    id: MemberId
    base_url: str
    active: bool = True


class Answer:
    def __init__(self, status: int, doc: dict):
        self.status, self._doc = status, doc

    def json(self) -> dict:
        return self._doc


class FakeExchange:
    """The outbox of one provider, two subscribers; ``down`` answer every delivery with HTTP 503."""

    def __init__(self, outbox: list[dict]):
        self.outbox = outbox
        self.down: set[str] = set()
        self.received: dict[str, list[int]] = {str(STUCK): [], str(HEALTHY): []}
        self.recorded = 0
        members = [Member(PROVIDER, "provider"), Member(STUCK, "stuck"), Member(HEALTHY, "healthy")]
        self.directory = type(
            "Directory",
            (),
            {
                "members": {str(m.id): m for m in members},
                "get": lambda _, member_id: next(m for m in members if m.id == member_id),
            },
        )()
        rules = [_rule("to-stuck", STUCK), _rule("to-healthy", HEALTHY)]
        self.rules = type("Rules", (), {"subscriptions": lambda _, member: rules if member == PROVIDER else []})()
        self.outbound, self.numbers, self.audit = self, self, self

    async def post(self, url: str, path: str, body: dict, _member: str) -> Answer:
        if path == "/v1/outbox":
            page = [e for e in self.outbox if e["id"] > body["after"]][: body["limit"]]
            return Answer(200, {"events": page})
        if url in self.down:
            return Answer(503, {})
        self.received[body["events"][0]["member"]] += [int(d["idempotency_key"].split(":")[-2]) for d in body["events"]]
        return Answer(200, {})

    async def convert_many(self, values: list[str], _source: str, targets) -> dict:
        return {target: list(values) for target in targets}

    def _record(self, *_args):
        return object()

    async def append_many(self, records: list) -> None:
        self.recorded += len(records)


def _event(event_id: int, kind: str) -> dict:
    return {
        "id": event_id,
        "member": str(PROVIDER),
        "type": kind,
        "subject": f"S{event_id}",
        "data": {"amount": event_id},
        "occurred_at": "2026-12-04T00:00:00+00:00",
    }


class Clock:
    """Both the router's back-off and the transport's redelivery times, moved on by the test."""

    def __init__(self):
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def pass_backoff(self) -> None:
        self.now += 11  # longer than the longest back-off (10 s)


def _router(exchange: FakeExchange, clock: Clock) -> EventRouter:
    engine = create_engine("sqlite://")
    return EventRouter(exchange, engine, StoreTransport(engine, clock=clock), clock=clock)


def test_a_failing_subscriber_more_than_a_page_behind_does_not_hold_the_others_back():
    backlog = events._PAGE + 100  # the stuck subscriber's events fill more than one page
    exchange = FakeExchange(
        [_event(i, "to-stuck") for i in range(1, backlog + 1)] + [_event(backlog + 1, "to-healthy")]
    )
    exchange.down.add("stuck")
    clock = Clock()
    router = _router(exchange, clock)
    asyncio.run(router.route_once())
    assert exchange.received[str(HEALTHY)] == [backlog + 1]
    assert exchange.received[str(STUCK)] == []
    for _ in range(3):  # later rounds while it is still down deliver nothing twice
        clock.pass_backoff()
        asyncio.run(router.route_once())
    assert exchange.received[str(HEALTHY)] == [backlog + 1]
    assert exchange.received[str(STUCK)] == []

    exchange.down.clear()  # back: everything it did not acknowledge, in order, once
    clock.pass_backoff()
    asyncio.run(router.route_once())
    assert exchange.received[str(STUCK)] == list(range(1, backlog + 1))
    assert exchange.received[str(HEALTHY)] == [backlog + 1]
    assert exchange.recorded == backlog + 1  # one exchange record per delivery


def test_a_new_event_reaches_a_healthy_subscriber_in_the_next_round_while_another_still_fails():
    backlog = 3 * events._PAGE
    exchange = FakeExchange([_event(i, "to-stuck") for i in range(1, backlog + 1)])
    exchange.down.add("stuck")
    clock = Clock()
    router = _router(exchange, clock)
    asyncio.run(router.route_once())
    exchange.outbox.append(_event(backlog + 1, "to-healthy"))
    asyncio.run(router.route_once())  # the stuck one is still backing off
    assert exchange.received[str(HEALTHY)] == [backlog + 1]
    assert exchange.received[str(STUCK)] == []


def test_a_restarted_router_resumes_where_the_last_one_stopped():
    exchange = FakeExchange([_event(i, "to-healthy") for i in range(1, 4)])
    engine, clock = create_engine("sqlite://"), Clock()
    asyncio.run(EventRouter(exchange, engine, StoreTransport(engine, clock=clock), clock=clock).route_once())
    exchange.outbox += [_event(4, "to-healthy"), _event(5, "to-stuck")]
    clock.now += 3600  # long past any ack wait: anything not acked would come again
    restarted = EventRouter(exchange, engine, StoreTransport(engine, clock=clock), clock=clock)
    asyncio.run(restarted.route_once())
    assert exchange.received[str(HEALTHY)] == [1, 2, 3, 4]
    assert exchange.received[str(STUCK)] == [5]


def test_a_store_of_the_router_before_the_transport_relays_from_its_lowest_cursor():
    engine, clock = create_engine("sqlite://"), Clock()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE event_cursors (provider TEXT, subscriber TEXT, last_id INTEGER)"))
        conn.execute(
            text("INSERT INTO event_cursors VALUES (:p, :s1, 3), (:p, :s2, 5)"),
            {"p": str(PROVIDER), "s1": str(STUCK), "s2": str(HEALTHY)},
        )
    exchange = FakeExchange([_event(i, "to-stuck") for i in range(1, 7)])
    asyncio.run(EventRouter(exchange, engine, StoreTransport(engine, clock=clock), clock=clock).route_once())
    assert exchange.received[str(STUCK)] == [4, 5, 6]


def test_an_unexpected_failure_of_a_delivery_loses_nothing():
    class Failing(FakeExchange):
        failures = 1

        async def convert_many(self, values, source, targets):
            if self.failures:
                self.failures -= 1
                raise RuntimeError("a bug in a conversion")
            return await super().convert_many(values, source, targets)

    exchange, clock = Failing([_event(i, "to-healthy") for i in range(1, 4)]), Clock()
    router = _router(exchange, clock)
    asyncio.run(router.route_once())
    assert exchange.received[str(HEALTHY)] == []
    clock.pass_backoff()
    asyncio.run(router.route_once())
    assert exchange.received[str(HEALTHY)] == [1, 2, 3]
