"""Event routing: each outbox event reaches every subscriber a rule names, converted, at least once.

Two stages over an event transport (the embedded store; NATS JetStream at scale): a relay reads each provider's outbox over
HTTP from its position and publishes every event under the id ``provider:outbox id`` (a republish is a no-op);
then each subscriber's durable consumer is fetched, converted to the subscriber's pseudonyms, delivered with
idempotency keys and acked. The relay positions live in the hub's store and the consumers in the transport's,
none only in memory. The transport's store is not the hub's: the hub's holds no agency's pseudonym.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from sqlalchemy import BigInteger, Column, Engine, MetaData, String, Table, insert, inspect, select, text, update
from sqlalchemy.exc import IntegrityError

from publicmesh.events import ConsumerConfig, Delivery, Event, EventTransport
from publicmesh.hub.event_topics import subscribes, topic_filter, topic_of
from publicmesh.hub.exchange import Exchange
from publicmesh.hub.rules import EventRule
from publicmesh.problems import Problem
from publicmesh.protocol.members import AUDIT_DOMAIN, MemberId

log = logging.getLogger(__name__)
metadata = MetaData()
relayed = Table(  # the last outbox id of each provider that is in the transport
    "event_relay",
    metadata,
    Column("provider", String(64), primary_key=True),
    Column("last_id", BigInteger, nullable=False),
)
_PAGE = 500
_PAGES_PER_ROUND = 20  # then the next provider's (or subscriber's) turn; the rest comes next round
# Longer than a delivery can take (the provider timeout): only a hub that died mid-delivery waits for it.
CONSUMER = ConsumerConfig(ack_wait=30.0)
_MARGIN_S = 0.05  # a subscriber is retried just after its nak'd events are due again, so they come first


class EventRouter:
    """Relays the outboxes of the providers with subscriptions and delivers to their subscribers, in rounds."""

    def __init__(
        self,
        exchange: Exchange,
        engine: Engine,
        transport: EventTransport,
        interval_s: float = 0.2,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.exchange = exchange
        self.engine = engine  # the hub's own store: the relay positions (no event, no pseudonym)
        self.interval = interval_s
        self.transport = transport
        self.clock = clock
        # ("outbox", provider) or ("consumer", subscriber) → when to try it again: a member may be both
        self._retry_at: dict[tuple[str, str], float] = {}
        self._failures: dict[tuple[str, str], int] = defaultdict(int)
        self._subscribed: dict[str, tuple[str, ...]] = {}
        self._members_seen: dict | None = None
        metadata.create_all(engine)
        _carry_over_cursors(engine)

    async def run(self) -> None:
        pause = self.interval
        while True:
            delivered = 0
            try:
                delivered = await self.route_once()
            except Exception:  # one bad round must not stop routing; it is retried next round
                log.exception("event routing round failed")
            # Poll fast while events flow, slower (up to 1 s) while outboxes are quiet.
            pause = self.interval if delivered else min(1.0, pause * 1.5)
            await asyncio.sleep(pause)

    async def route_once(self) -> int:
        """Relays every outbox with subscriptions, then delivers to every subscriber; returns the deliveries."""
        await self._subscribe()
        await self.relay_once()
        delivered = 0
        for subscriber in sorted(self._subscribed):
            if self._ready(("consumer", subscriber)):
                delivered += await self._deliver_to(MemberId.parse(subscriber))
        return delivered

    async def _subscribe(self) -> None:
        """One durable consumer per subscriber the rules name, filtered to the topics its rules may send it."""
        if self.exchange.directory.members is self._members_seen:  # a reload of the directory makes a new dict
            return
        self._members_seen = self.exchange.directory.members
        wanted: dict[str, set[str]] = defaultdict(set)
        members = [m for m in self._members_seen.values() if m.active]
        rules = {r for m in members for r in self.exchange.rules.subscriptions(m.id)}
        for rule in rules:
            for member in members:
                if subscribes(rule, member.id):
                    wanted[str(member.id)].add(topic_filter(rule, member.id))
        for subscriber, topics in wanted.items():
            if self._subscribed.get(subscriber) != tuple(sorted(topics)):
                await self.transport.subscribe(subscriber, sorted(topics), CONSUMER)
                self._subscribed[subscriber] = tuple(sorted(topics))

    # The relay: outboxes into the transport.

    async def relay_once(self) -> int:
        """Publishes what is new in every outbox with subscriptions; returns how many events were new."""
        published = 0
        with self.engine.connect() as conn:
            positions = dict(conn.execute(select(relayed.c.provider, relayed.c.last_id)).all())
        for provider in list(self.exchange.directory.members.values()):
            rules = self.exchange.rules.subscriptions(provider.id) if provider.active else []
            if not rules or not self._ready(("outbox", str(provider.id))):
                continue
            try:
                published += await self._relay(provider, rules, positions.get(str(provider.id), 0))
                self._succeeded(("outbox", str(provider.id)))
            except Problem as problem:  # the provider is down: its outbox waits, nothing is lost
                self._back_off(("outbox", str(provider.id)), problem)
        return published

    async def _relay(self, provider, rules: list[EventRule], after: int) -> int:
        kinds, published = {r.event for r in rules}, 0
        for _ in range(_PAGES_PER_ROUND):
            answer = await self.exchange.outbound.post(
                provider.base_url,
                "/v1/outbox",
                {"member": str(provider.id), "after": after, "limit": _PAGE},
                str(provider.id),
            )
            page = answer.json()["events"] if answer.status == 200 else []
            if not page:
                break
            published += await self.transport.publish(
                [_event(provider.id, e) for e in page if e["member"] == str(provider.id) and e["type"] in kinds]
            )
            after = page[-1]["id"]
            self._record_position(str(provider.id), after)
            if len(page) < _PAGE:
                break
        return published

    def _record_position(self, provider: str, last_id: int) -> None:
        with self.engine.begin() as conn:
            where = relayed.c.provider == provider
            if not conn.execute(update(relayed).where(where).values(last_id=last_id)).rowcount:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(relayed).values(provider=provider, last_id=last_id))
                except IntegrityError:  # another hub relayed it meanwhile
                    conn.execute(update(relayed).where(where).values(last_id=last_id))

    # Delivery: each subscriber's consumer to the subscriber.

    async def _deliver_to(self, subscriber: MemberId) -> int:
        """Pages of the subscriber's consumer, while full; a failure naks the rest and backs this subscriber off
        alone, so it neither holds the others back nor skips anything (what it did not ack comes again)."""
        delivered = 0
        for _ in range(_PAGES_PER_ROUND):
            batch = await self.transport.fetch(str(subscriber), _PAGE)
            if not batch:
                break
            count, done = await self._deliver_batch(subscriber, batch)
            delivered += count
            if not done or len(batch) < _PAGE:
                break
        return delivered

    async def _deliver_batch(self, subscriber: MemberId, batch: list[Delivery]) -> tuple[int, bool]:
        """Delivers a batch per source, acking each source's part once the subscriber took it; returns the count and
        whether every part went."""
        by_source: dict[str, list[Event]] = defaultdict(list)
        for delivery in batch:
            by_source[delivery.event.source].append(delivery.event)
        parts, delivered = list(by_source.items()), 0
        for k, (source, events) in enumerate(parts):
            try:
                delivered += await self._deliver_part(MemberId.parse(source), subscriber, events)
            except Exception as exc:  # nothing is lost: what it did not take comes again, in order, after a pause
                if not isinstance(exc, Problem):
                    log.exception("delivery to %s failed", subscriber)
                key = ("consumer", str(subscriber))
                delay = self._back_off(key, exc)
                await self.transport.nak(str(subscriber), [e.id for _, rest in parts[k:] for e in rest], delay)
                self._retry_at[key] = self.clock() + delay + _MARGIN_S
                return delivered, False
            await self.transport.ack(str(subscriber), [e.id for e in events])
        self._succeeded(("consumer", str(subscriber)))
        return delivered, True

    async def _deliver_part(self, provider: MemberId, subscriber: MemberId, events: Sequence[Event]) -> int:
        rules = self.exchange.rules.subscriptions(provider)
        items = [
            (rule, event)
            for event in events
            for rule in rules
            if rule.event == event.kind and rule.subscriber_for(provider, event.payload) == subscriber
        ]
        return await self._deliver(provider, subscriber, items) if items else 0

    def _ready(self, key: tuple[str, str]) -> bool:
        return self.clock() >= self._retry_at.get(key, 0)

    def _succeeded(self, key: tuple[str, str]) -> None:
        self._failures.pop(key, None)
        self._retry_at.pop(key, None)

    def _back_off(self, key: tuple[str, str], failure: Exception) -> float:
        self._failures[key] += 1
        backoff = min(10.0, 0.25 * 2 ** self._failures[key])
        self._retry_at[key] = self.clock() + backoff
        log.warning("%s %s: %s; retry in %.1f s", *key, getattr(failure, "detail", failure), backoff)
        return backoff

    async def _deliver(self, provider: MemberId, subscriber_id: MemberId, items: list[tuple[EventRule, Event]]) -> int:
        subscriber = self.exchange.directory.get(subscriber_id)
        if subscriber is None:
            return 0
        source, target = provider.pseudonym_domain, subscriber_id.pseudonym_domain
        subjects = await self.exchange.numbers.convert_many(
            [e.subject for _, e in items], source, (target, AUDIT_DOMAIN)
        )
        deliveries, records = [], []
        for k, (rule, event) in enumerate(items):
            data = {a: event.payload[a] for a in rule.attributes if a in event.payload}
            if event.payload.get("protected"):
                for name in ("postal_code", "address"):
                    data.pop(name, None)
            for name in rule.pseudonym_fields:
                values = data.get(name) or []
                if values:
                    data[name] = (await self.exchange.numbers.convert_many(values, source, (target,)))[target]
            deliveries.append(
                {
                    "idempotency_key": f"{event.id}:{subscriber_id}",
                    "member": str(subscriber_id),
                    "source": str(provider),
                    "type": event.kind,
                    "subject": subjects[target][k],
                    "data": data,
                    "occurred_at": event.occurred_at,
                }
            )
            records.append(
                self.exchange._record(
                    "event",
                    subscriber_id,
                    provider,
                    event.kind,
                    list(data),
                    rule,
                    rule.affair,
                    rule.legal_basis,
                    subjects[AUDIT_DOMAIN][k],
                    event.id,
                )
            )
        answer = await self.exchange.outbound.post(
            subscriber.base_url, "/v1/events", {"events": deliveries}, str(subscriber_id)
        )
        if answer.status != 200:
            raise Problem("bad-provider-answer", f"{subscriber_id} answered HTTP {answer.status} to a delivery")
        await self.exchange.audit.append_many(records)
        return len(deliveries)


def _event(provider: MemberId, entry: dict) -> Event:
    """An outbox entry as the transport carries it; its id is the provider's and the outbox's (the dedup key)."""
    return Event(
        id=f"{provider}:{entry['id']}",
        topic=topic_of(provider, entry["type"], entry["data"]),
        kind=entry["type"],
        source=str(provider),
        subject=entry["subject"],
        payload=entry["data"],
        occurred_at=entry["occurred_at"],
    )


def _carry_over_cursors(engine: Engine) -> None:
    """A store of the hub before the transport kept a cursor per (provider, subscriber): relay from the lowest."""
    if not inspect(engine).has_table("event_cursors"):
        return
    with engine.begin() as conn:
        if conn.execute(select(relayed.c.provider).limit(1)).first() is not None:
            return
        rows = conn.execute(text("SELECT provider, min(last_id) FROM event_cursors GROUP BY provider")).all()
        if rows:
            conn.execute(insert(relayed), [{"provider": p, "last_id": last} for p, last in rows])
