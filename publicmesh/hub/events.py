"""Event routing: each outbox event reaches every subscriber a rule names, converted, at least once.

The hub keeps no copy of the events: a cursor per (provider, subscriber) moves only after the
subscriber acknowledged, so a subscriber that is down gets everything from its cursor on its return.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

from sqlalchemy import BigInteger, Column, Engine, MetaData, String, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from publicmesh.hub.exchange import Exchange
from publicmesh.hub.rules import EventRule
from publicmesh.problems import Problem
from publicmesh.protocol.members import AUDIT_DOMAIN, MemberId

log = logging.getLogger(__name__)
metadata = MetaData()
cursors = Table(
    "event_cursors",
    metadata,
    Column("provider", String(64), primary_key=True),
    Column("subscriber", String(64), primary_key=True),
    Column("last_id", BigInteger, nullable=False),
)
_PAGE = 500
_PAGES_PER_ROUND = 20  # then the next provider's turn; the rest comes next round


class EventRouter:
    def __init__(self, exchange: Exchange, engine: Engine, interval_s: float = 0.2):
        self.exchange = exchange
        self.engine = engine
        self.interval = interval_s
        self._retry_at: dict[tuple[str, str], float] = {}
        self._failures: dict[tuple[str, str], int] = defaultdict(int)
        self._cursors: dict[tuple[str, str], int] | None = None
        metadata.create_all(engine)

    def _cursor(self, provider: str, subscriber: str) -> int:
        if self._cursors is None:  # the hub is the only writer: read once, then keep in memory
            with self.engine.connect() as conn:
                self._cursors = {(r.provider, r.subscriber): r.last_id for r in conn.execute(select(cursors))}
        return self._cursors.get((provider, subscriber), 0)

    def _advance(self, provider: str, subscriber: str, last_id: int) -> None:
        values = dict(provider=provider, subscriber=subscriber, last_id=last_id)
        insert = (postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert)(cursors).values(
            **values
        )
        with self.engine.begin() as conn:
            conn.execute(
                insert.on_conflict_do_update(index_elements=["provider", "subscriber"], set_={"last_id": last_id})
            )
        self._cursors[(provider, subscriber)] = last_id

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
        """One pass over every provider with subscriptions; returns the number of deliveries."""
        delivered = 0
        directory = self.exchange.directory
        for provider in list(directory.members.values()):
            rules = self.exchange.rules.subscriptions(provider.id) if provider.active else []
            if not rules or time.monotonic() < self._retry_at.get((str(provider.id), ""), 0):
                continue
            try:
                delivered += await self._route_provider(provider, rules)
            except Problem as problem:  # the provider is down: its outbox waits, nothing is lost
                self._back_off((str(provider.id), ""), problem)
        return delivered

    def _back_off(self, key: tuple[str, str], problem: Problem) -> None:
        self._failures[key] += 1
        backoff = min(10.0, 0.25 * 2 ** self._failures[key])
        self._retry_at[key] = time.monotonic() + backoff
        log.warning("%s → %s: %s; retry in %.1f s", key[0], key[1] or "hub", problem.detail, backoff)

    async def _route_provider(self, provider, rules: list[EventRule]) -> int:
        """Reads the provider's outbox from the lowest cursor of the subscribers not backing off, a page at a time,
        while a full page moved them on: a subscriber that keeps failing neither holds the others back nor is
        skipped (its cursor stays where it was until it acknowledges)."""
        subscribers = {str(s) for r in rules for s in self._candidates(r, provider.id)}
        cursor_of = {s: self._cursor(str(provider.id), s) for s in subscribers}
        delivered = 0
        for _ in range(_PAGES_PER_ROUND):
            ready = {s for s in subscribers if time.monotonic() >= self._retry_at.get((str(provider.id), s), 0)}
            if not ready:
                break
            page_delivered, full = await self._route_page(provider, rules, ready, cursor_of)
            delivered += page_delivered
            if not full:
                break
        return delivered

    async def _route_page(
        self, provider, rules: list[EventRule], ready: set[str], cursor_of: dict[str, int]
    ) -> tuple[int, bool]:
        """One page of the outbox after the lowest cursor of ``ready``; returns deliveries and whether it was full."""
        answer = await self.exchange.outbound.post(
            provider.base_url,
            "/v1/outbox",
            {"member": str(provider.id), "after": min(cursor_of[s] for s in ready), "limit": _PAGE},
            str(provider.id),
        )
        self._failures.pop((str(provider.id), ""), None)
        page = answer.json()["events"] if answer.status == 200 else []
        events = [e for e in page if e["member"] == str(provider.id)]
        if not events:
            return 0, False
        last_seen = page[-1]["id"]
        plan: dict[str, list[tuple[EventRule, dict]]] = defaultdict(list)
        for event in events:
            for rule in rules:
                if rule.event == event["type"]:
                    subscriber = rule.subscriber_for(provider.id, event["data"])
                    if subscriber and str(subscriber) in ready and event["id"] > cursor_of[str(subscriber)]:
                        plan[str(subscriber)].append((rule, event))
        delivered = 0
        for subscriber in ready:
            key = (str(provider.id), subscriber)
            items = plan.get(subscriber, [])
            try:
                if items:
                    delivered += await self._deliver(provider.id, MemberId.parse(subscriber), items)
                if last_seen > cursor_of[subscriber]:
                    self._advance(str(provider.id), subscriber, last_seen)
                    cursor_of[subscriber] = last_seen
                self._failures.pop(key, None)
                self._retry_at.pop(key, None)
            except Problem as problem:
                self._back_off(key, problem)
        return delivered, len(page) >= _PAGE

    def _candidates(self, rule: EventRule, provider: MemberId) -> list[MemberId]:
        _, code, system = rule.subscriber.split("/")
        if code != "{code}":
            found = rule.subscriber_for(provider, {})
            return [found] if found and self.exchange.directory.get(found) else []
        return [
            m.id
            for m in self.exchange.directory.members.values()
            if m.active and m.id.system == system and m.id.member_class == rule.subscriber.split("/")[0]
        ]

    async def _deliver(self, provider: MemberId, subscriber_id: MemberId, items: list[tuple[EventRule, dict]]) -> int:
        subscriber = self.exchange.directory.get(subscriber_id)
        if subscriber is None:
            return 0
        source, target = provider.pseudonym_domain, subscriber_id.pseudonym_domain
        subjects = await self.exchange.numbers.convert_many(
            [e["subject"] for _, e in items], source, (target, AUDIT_DOMAIN)
        )
        deliveries, records = [], []
        for k, (rule, event) in enumerate(items):
            data = {a: event["data"][a] for a in rule.attributes if a in event["data"]}
            if event["data"].get("protected"):
                for name in ("postal_code", "address"):
                    data.pop(name, None)
            for name in rule.pseudonym_fields:
                values = data.get(name) or []
                if values:
                    data[name] = (await self.exchange.numbers.convert_many(values, source, (target,)))[target]
            deliveries.append(
                {
                    "idempotency_key": f"{provider}:{event['id']}:{subscriber_id}",
                    "member": str(subscriber_id),
                    "source": str(provider),
                    "type": event["type"],
                    "subject": subjects[target][k],
                    "data": data,
                    "occurred_at": event["occurred_at"],
                }
            )
            records.append(
                self.exchange._record(
                    "event",
                    subscriber_id,
                    provider,
                    event["type"],
                    list(data),
                    rule,
                    rule.affair,
                    rule.legal_basis,
                    subjects[AUDIT_DOMAIN][k],
                    f"{provider}:{event['id']}",
                )
            )
        answer = await self.exchange.outbound.post(
            subscriber.base_url, "/v1/events", {"events": deliveries}, str(subscriber_id)
        )
        if answer.status != 200:
            raise Problem("bad-provider-answer", f"{subscriber_id} answered HTTP {answer.status} to a delivery")
        await self.exchange.audit.append_many(records)
        return len(deliveries)
