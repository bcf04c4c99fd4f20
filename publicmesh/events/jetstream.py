"""The event transport on NATS JetStream: one stream (file storage, interest retention), a durable pull consumer
with explicit acks per subscriber.

An event's topic, under the transport's prefix, is its subject and its id the ``Nats-Msg-Id``, so JetStream's
duplicate window drops a republish. The window is an hour by default: the relay records its outbox position after
each page it publishes, so a hub that restarts republishes at most that page, and it does so at once on restart; a
hub down longer than the window may repeat that page, which the subscribers' idempotency keys absorb.
NATS servers before 2.10 take one filter per consumer: a subscriber's topics become the one filter that covers them
all, and what it covers beyond them is acked here without being handed out.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

import nats
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from publicmesh.events.transport import ConsumerConfig, Delivery, Event, topic_matches

_API = "$JS.API"
_MAX_ACK_PENDING = 20_000  # per consumer: above the hub's page (500); the server's default is 1,000
_NAME = re.compile(r"[^A-Za-z0-9-]")


class JetStreamTransport:
    """The event transport on a JetStream stream; see ``EventTransport``. Connects on first use."""

    def __init__(
        self,
        url: str,
        *,
        stream: str = "PUBLICMESH_EVENTS",
        prefix: str | None = None,
        duplicate_window: float = 3600.0,
        timeout: float = 10.0,
    ):
        self.url, self.stream, self.prefix = url, stream, prefix or stream  # streams' subjects may not overlap
        self.duplicate_window, self.timeout = duplicate_window, timeout
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._connecting = asyncio.Lock()
        self._consumers: dict[str, _Consumer] = {}
        self._publishing = asyncio.Lock()
        self._acks_prefix, self._batches = "", 0
        self._acks: _Acks | None = None

    async def _connect(self) -> tuple[Client, JetStreamContext]:
        async with self._connecting:
            if self._nc is None or self._js is None:
                nc = await nats.connect(self.url, name="publicmesh-events", max_reconnect_attempts=-1)
                js = nc.jetstream(timeout=self.timeout)
                config = api.StreamConfig(
                    name=self.stream,
                    subjects=[f"{self.prefix}.>"],
                    storage=api.StorageType.FILE,
                    retention=api.RetentionPolicy.INTEREST,
                    duplicate_window=self.duplicate_window,
                )
                try:
                    await js.add_stream(config)
                except nats.js.errors.BadRequestError:  # it exists with another config (e.g. a new window)
                    await js.update_stream(config)
                self._acks_prefix = nc.new_inbox()
                await nc.subscribe(f"{self._acks_prefix}.>", cb=self._acked, pending_msgs_limit=-1)
                self._nc, self._js = nc, js
        return self._nc, self._js

    async def close(self) -> None:
        """Closes the connection; what was fetched and not acked comes again after its ack wait."""
        if self._nc is not None:
            await self._nc.close()  # acks were flushed as they were sent; a drain would wait on a server gone
            self._nc, self._js, self._consumers = None, None, {}

    async def delete_stream(self) -> None:
        """Deletes the stream and every consumer on it, if it exists, then closes the connection."""
        nc = await nats.connect(self.url, name="publicmesh-events")
        try:
            await nc.jetstream(timeout=self.timeout).delete_stream(self.stream)
        except NotFoundError:
            pass
        finally:
            await nc.close()
        await self.close()

    async def publish(self, events: Sequence[Event]) -> int:
        if not events:
            return 0
        nc, _ = await self._connect()
        async with self._publishing:  # one batch at a time: its acks are told apart by the batch's number
            self._batches += 1
            prefix = f"{self._acks_prefix}.{self._batches}"
            self._acks = _Acks(prefix, len(events))
            for i, event in enumerate(events):  # written in order on one connection: stored in this order
                subject = f"{self.prefix}.{event.topic}"
                await nc.publish(subject, _encode(event), reply=f"{prefix}.{i}", headers={"Nats-Msg-Id": event.id})
            try:
                await asyncio.wait_for(self._acks.done.wait(), self.timeout)
            except TimeoutError:
                raise TimeoutError(f"JetStream acked {self._acks.count} of {len(events)} events") from None
            if self._acks.error:
                raise RuntimeError(f"JetStream refused an event: {self._acks.error}")
            return self._acks.new

    async def _acked(self, msg: Msg) -> None:
        acks = self._acks
        if acks is None or not msg.subject.startswith(acks.prefix + "."):
            return  # of an earlier batch that timed out
        answer = orjson.loads(msg.data) if msg.data else {"error": msg.headers}
        if "error" in answer:
            acks.error = acks.error or str(answer["error"])
        elif not answer.get("duplicate"):
            acks.new += 1
        acks.count += 1
        if acks.count == acks.expected:
            acks.done.set()

    async def subscribe(
        self, subscriber: str, topics: Sequence[str], config: ConsumerConfig = ConsumerConfig()
    ) -> None:
        nc, js = await self._connect()
        durable = consumer_name(subscriber)
        wanted = api.ConsumerConfig(
            durable_name=durable,
            description=orjson.dumps(list(topics)).decode(),  # read back by a process that did not subscribe
            deliver_policy=api.DeliverPolicy.ALL,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=config.ack_wait,
            # JetStream wants more deliveries than backoff steps; unbounded otherwise, as ConsumerConfig means
            max_deliver=1_000_000_000 if config.backoff else -1,
            backoff=list(config.backoff) or None,
            filter_subject=f"{self.prefix}.{covering_filter(topics)}",
            max_ack_pending=_MAX_ACK_PENDING,
        )
        # Creates it, or updates it in place (filter included, since NATS 2.9) keeping its position and acks.
        await js.add_consumer(self.stream, wanted)
        if subscriber in self._consumers:  # what it fetched and has not acked stays ackable
            self._consumers[subscriber].topics, self._consumers[subscriber].wanted_topics = list(topics), {}
        else:
            self._consumers[subscriber] = await _Consumer.open(nc, self.stream, durable, topics)

    async def _consumer(self, subscriber: str) -> _Consumer:
        if subscriber not in self._consumers:
            nc, js = await self._connect()
            durable = consumer_name(subscriber)
            try:
                info = await js.consumer_info(self.stream, durable)
            except NotFoundError:
                raise LookupError(f"{subscriber} has no subscription") from None
            if subscriber not in self._consumers:  # opened by a concurrent call meanwhile
                self._consumers[subscriber] = await _Consumer.open(nc, self.stream, durable, self._topics(info.config))
        return self._consumers[subscriber]

    def _topics(self, config: api.ConsumerConfig) -> list[str]:
        """A consumer's topics as its subscriber gave them; else (made elsewhere) its filter, which withholds nothing."""
        try:
            topics = orjson.loads(config.description or "")
            if isinstance(topics, list) and all(isinstance(t, str) for t in topics):
                return topics
        except orjson.JSONDecodeError:
            pass
        return [(config.filter_subject or f"{self.prefix}.>").removeprefix(f"{self.prefix}.")]

    async def fetch(self, subscriber: str, max_events: int, wait: float = 0.0) -> list[Delivery]:
        consumer = await self._consumer(subscriber)
        async with consumer.lock:
            while True:
                got, extra = await consumer.pull(max_events, wait, self.timeout)
                if extra:  # covered by the consumer's filter, not by the subscriber's topics
                    await consumer.settle(extra, b"+ACK")
                deliveries = []
                for event, msg in got:
                    consumer.unacked[event.id] = msg
                    deliveries.append(Delivery(event, msg.metadata.num_delivered or 1))
                if deliveries or not extra:
                    return deliveries
                wait = 0.0  # only extras came: look again at once

    async def ack(self, subscriber: str, event_ids: Sequence[str]) -> None:
        await self._settle(subscriber, event_ids, b"+ACK")

    async def nak(self, subscriber: str, event_ids: Sequence[str], delay: float = 0.0) -> None:
        body = b"-NAK " + orjson.dumps({"delay": int(delay * 1e9)}) if delay > 0 else b"-NAK"
        await self._settle(subscriber, event_ids, body)

    async def _settle(self, subscriber: str, event_ids: Sequence[str], body: bytes) -> None:
        if not event_ids:
            return
        consumer = await self._consumer(subscriber)
        # An id fetched by another process (or before a restart) is not here: its ack wait brings it again.
        msgs = [m for m in (consumer.unacked.pop(i, None) for i in event_ids) if m is not None]
        await consumer.settle(msgs, body)


class _Consumer:
    """One subscriber's durable consumer as this process pulls from it: an inbox, and what it fetched unacked."""

    def __init__(self, nc: Client, stream: str, durable: str, topics: Sequence[str]):
        self.nc, self.topics = nc, list(topics)
        self.wanted_topics: dict[str, bool] = {}
        self.next_subject = f"{_API}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.inbox_prefix = nc.new_inbox()
        self.inbox: Subscription | None = None
        self.requests = 0
        self.unacked: dict[str, Msg] = {}
        self.lock = asyncio.Lock()
        # Filled by the inbox's callback (cheaper per message than awaiting each): messages, and whether the current
        # request is over.
        self.received: list[Msg] = []
        self.reply, self.wanted, self.over = "", 0, asyncio.Event()

    @classmethod
    async def open(cls, nc: Client, stream: str, durable: str, topics: Sequence[str]) -> _Consumer:
        consumer = cls(nc, stream, durable, topics)
        consumer.inbox = await nc.subscribe(
            f"{consumer.inbox_prefix}.*", cb=consumer._arrived, pending_msgs_limit=-1, pending_bytes_limit=-1
        )
        return consumer

    async def _arrived(self, msg: Msg) -> None:
        status = _status(msg)
        if not status:  # a message, whichever request it answers (one that ended here may still bring some)
            self.received.append(msg)
            if len(self.received) >= self.wanted:
                self.over.set()
        elif msg.subject == self.reply and status != "100":  # 404 no messages, 408 expired, 409 a limit; 100 beats
            self.over.set()

    async def pull(self, batch: int, wait: float, timeout: float) -> tuple[list[tuple[Event, Msg]], list[Msg]]:
        """What the server hands out now, up to ``batch``; if nothing, waits up to ``wait`` for one.

        Returns the messages the subscriber's topics match, and the others (to be acked without delivery)."""
        if len(self.received) < batch:
            await self._request({"batch": batch - len(self.received), "no_wait": True}, batch, timeout)
        if not self.received and wait > 0:
            # One message, lingering: a request for more would hold the rest of the batch past our return.
            await self._request({"batch": 1, "expires": int(wait * 1e9)}, 1, wait + timeout)
            if self.received and batch > 1:
                await self._request({"batch": batch - 1, "no_wait": True}, batch, timeout)
        got, self.received = self.received[:batch], self.received[batch:]
        matched, extra = [], []
        for msg in got:
            event = _decode(msg.data)
            if self._wants(event.topic):
                matched.append((event, msg))
            else:
                extra.append(msg)
        return matched, extra

    def _wants(self, topic: str) -> bool:
        if topic not in self.wanted_topics:
            if len(self.wanted_topics) > 10_000:  # topics name municipalities: bounded, but keep it so
                self.wanted_topics.clear()
            self.wanted_topics[topic] = any(topic_matches(t, topic) for t in self.topics)
        return self.wanted_topics[topic]

    async def _request(self, request: dict, enough: int, timeout: float) -> None:
        """Sends a pull request; returns once ``enough`` messages are here or the server says the request is over."""
        self.requests += 1
        self.reply, self.wanted = f"{self.inbox_prefix}.{self.requests}", enough
        self.over.clear()
        await self.nc.publish(self.next_subject, orjson.dumps(request), reply=self.reply)
        try:
            await asyncio.wait_for(self.over.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self.reply, self.wanted = "", 1 << 62

    async def settle(self, msgs: Sequence[Msg], body: bytes) -> None:
        """Acks or naks the messages, then a round trip so that the server has them before we go on."""
        for msg in msgs:
            await self.nc.publish(msg.reply, body)
        if msgs:
            await self.nc.flush()


class _Acks:
    """The acks of one batch of publishes, as they arrive."""

    def __init__(self, prefix: str, expected: int):
        self.prefix, self.expected = prefix, expected
        self.count, self.new, self.error = 0, 0, ""
        self.done = asyncio.Event()


def consumer_name(subscriber: str) -> str:
    """A durable consumer's name for a member id: JetStream names take no dots, wildcards or path separators."""
    return _NAME.sub(lambda m: f"_{ord(m.group()):02X}", subscriber)


def covering_filter(topics: Sequence[str]) -> str:
    """The narrowest single NATS filter that matches every topic any of the filters matches."""
    if not topics:
        return "_none"  # a subject no event has: a member is never a topic's first token in lowercase
    split = [t.split(".") for t in topics]
    shortest = min(len(s) for s in split)
    # Filters of different lengths, or with ">", are covered by a ">" no later than the shortest one's last token.
    ragged = len({len(s) for s in split}) > 1 or any(s[-1] == ">" for s in split)
    tokens = []
    for i in range(shortest - 1 if ragged else shortest):
        column = {s[i] for s in split}
        tokens.append(column.pop() if len(column) == 1 else "*")
    return ".".join(tokens + [">"] if ragged else tokens)


def _status(msg: Msg) -> str | None:
    return msg.headers.get("Status") if msg.headers and not msg.data else None


def _encode(event: Event) -> bytes:
    return orjson.dumps(
        {
            "id": event.id,
            "topic": event.topic,
            "kind": event.kind,
            "source": event.source,
            "subject": event.subject,
            "payload": event.payload,
            "occurred_at": event.occurred_at,
        }
    )


def _decode(data: bytes) -> Event:
    return Event(**orjson.loads(data))
