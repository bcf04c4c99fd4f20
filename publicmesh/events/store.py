"""The embedded event transport: a stream and durable consumers in tables of one store (SQLite or PostgreSQL).

Sequence numbers come from a one-row head that every publish updates first: the row lock orders publishers, so
sequence order is commit order and a consumer that has read up to the head has missed nothing below it. An event
is kept until every consumer whose topics match it has acked it, and at least ``duplicate_window`` seconds so a
late republish of its id is still recognised (JetStream's interest retention and duplicate window).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from publicmesh.events.transport import ConsumerConfig, Delivery, Event, topic_matches

metadata = MetaData()
_SEQ = BigInteger().with_variant(Integer, "sqlite")
head = Table("event_stream_head", metadata, Column("id", Integer, primary_key=True), Column("last_seq", _SEQ))
stream = Table(
    "event_stream",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=False),
    Column("event_id", String(160), nullable=False, unique=True),
    Column("topic", String(200), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("source", String(64), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("occurred_at", String(40), nullable=False),
    Column("published_at", Float, nullable=False),
)
consumers = Table(
    "event_consumers",
    metadata,
    Column("subscriber", String(64), primary_key=True),
    Column("topics", Text, nullable=False),
    Column("ack_wait", Float, nullable=False),
    Column("backoff", Text, nullable=False),
    Column("delivered_seq", _SEQ, nullable=False),  # every event up to here was delivered or did not match
)
pending = Table(  # delivered (or nak'd) and not acked yet
    "event_pending",
    metadata,
    Column("subscriber", String(64), primary_key=True),
    Column("seq", _SEQ, primary_key=True),
    Column("attempt", Integer, nullable=False),
    Column("due_at", Float, nullable=False),  # when it is delivered again unless acked
)
_CHUNK = 1000  # ids per IN list, well under SQLite's bound on parameters
_POLL_S = 0.05


class StoreTransport:
    """The event transport in the tables above, on any SQLAlchemy engine; see ``EventTransport``."""

    def __init__(
        self,
        engine: Engine,
        *,
        duplicate_window: float = 120.0,
        purge_every: float = 10.0,
        purge_batch: int = 20_000,
        clock: Callable[[], float] = time.time,
    ):
        self.engine = engine
        self.duplicate_window = duplicate_window
        self.purge_every, self.purge_batch = purge_every, purge_batch
        self.clock = clock  # wall time: due times are shared by every process on the store
        self._purged_at = time.monotonic()
        self._purge_from, self._purge_more = 0, False  # where the next purge scans from; whether it is due at once
        metadata.create_all(engine)
        with engine.begin() as conn:
            if conn.execute(select(head.c.id)).first() is None:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(head).values(id=1, last_seq=0))
                except IntegrityError:
                    pass  # another process made it meanwhile

    async def publish(self, events: Sequence[Event]) -> int:
        for _ in range(3):
            try:
                return self._publish(events)
            except IntegrityError:  # the same id published concurrently: the next try sees it
                continue
        return self._publish(events)

    def _publish(self, events: Sequence[Event]) -> int:
        if not events:
            return 0
        with self.engine.begin() as conn:
            # The head first: it takes the write lock before anything is read (see the module's docstring).
            conn.execute(update(head).where(head.c.id == 1).values(last_seq=head.c.last_seq))
            last = conn.execute(select(head.c.last_seq).where(head.c.id == 1)).scalar_one()
            known: set[str] = set()
            for ids in _chunks([e.id for e in events]):
                known.update(conn.scalars(_KNOWN, {"ids": list(ids)}))
            rows: list[dict] = []
            now = self.clock()
            for event in events:
                if event.id in known:
                    continue
                known.add(event.id)
                rows.append(_row(event, last + len(rows) + 1, now))
            if rows:
                conn.execute(insert(stream), rows)
                conn.execute(update(head).where(head.c.id == 1).values(last_seq=last + len(rows)))
        return len(rows)

    async def subscribe(
        self, subscriber: str, topics: Sequence[str], config: ConsumerConfig = ConsumerConfig()
    ) -> None:
        values = {"topics": orjson.dumps(list(topics)).decode(), "ack_wait": config.ack_wait}
        values["backoff"] = orjson.dumps(list(config.backoff)).decode()
        where = consumers.c.subscriber == subscriber
        with self.engine.begin() as conn:
            if conn.execute(update(consumers).where(where).values(**values)).rowcount:
                return
            try:
                with conn.begin_nested():
                    conn.execute(insert(consumers).values(subscriber=subscriber, delivered_seq=0, **values))
            except IntegrityError:  # created by another process meanwhile
                conn.execute(update(consumers).where(where).values(**values))

    async def fetch(self, subscriber: str, max_events: int, wait: float = 0.0) -> list[Delivery]:
        deadline = time.monotonic() + wait
        while True:
            got = self._fetch(subscriber, max_events)
            left = deadline - time.monotonic()
            if got or left <= 0:
                return got
            await asyncio.sleep(min(_POLL_S, left))

    def _fetch(self, subscriber: str, max_events: int) -> list[Delivery]:
        if not self._anything_for(subscriber):
            return []
        with self.engine.begin() as conn:
            # Touching the consumer's row first serialises fetches of one consumer (a row lock; SQLite's write lock).
            where = consumers.c.subscriber == subscriber
            conn.execute(update(consumers).where(where).values(delivered_seq=consumers.c.delivered_seq))
            consumer = conn.execute(select(consumers).where(where)).first()
            if consumer is None:
                raise LookupError(f"{subscriber} has no subscription")
            config = ConsumerConfig(consumer.ack_wait, tuple(orjson.loads(consumer.backoff)))
            now = self.clock()
            due = self._redeliver(conn, subscriber, config, now, max_events)
            fresh = self._deliver_new(conn, consumer, config, now, max_events - len(due))
        return due + fresh

    def _anything_for(self, subscriber: str) -> bool:
        """Whether a fetch may find something, read without writing: an idle consumer's fetch writes nothing."""
        with self.engine.connect() as conn:
            delivered = conn.execute(
                select(consumers.c.delivered_seq).where(consumers.c.subscriber == subscriber)
            ).first()
            if delivered is None:
                raise LookupError(f"{subscriber} has no subscription")
            if conn.execute(select(head.c.last_seq).where(head.c.id == 1)).scalar_one() > delivered[0]:
                return True
            due = select(pending.c.seq).where(pending.c.subscriber == subscriber, pending.c.due_at <= self.clock())
            return conn.execute(due.limit(1)).first() is not None

    def _redeliver(self, conn: Connection, subscriber: str, config: ConsumerConfig, now: float, limit: int) -> list:
        query = (
            select(stream, pending.c.attempt)
            .join(pending, pending.c.seq == stream.c.seq)
            .where(pending.c.subscriber == subscriber, pending.c.due_at <= now)
            .order_by(pending.c.seq)
            .limit(limit)
        )
        rows = conn.execute(query).all()
        if rows:
            conn.execute(
                update(pending)
                .where(pending.c.subscriber == subscriber, pending.c.seq == bindparam("s"))
                .values(attempt=bindparam("a"), due_at=bindparam("d")),
                [{"s": r.seq, "a": r.attempt + 1, "d": now + config.wait_after(r.attempt + 1)} for r in rows],
            )
        return [Delivery(_event(r), r.attempt + 1) for r in rows]

    def _deliver_new(self, conn: Connection, consumer, config: ConsumerConfig, now: float, limit: int) -> list:
        if limit <= 0:
            return []
        last = conn.execute(select(head.c.last_seq).where(head.c.id == 1)).scalar_one()  # before the rows: see above
        if last <= consumer.delivered_seq:
            return []
        topics = orjson.loads(consumer.topics)
        wanted = _prefilter(topics)
        rows = conn.execute(
            select(stream)
            .where(stream.c.seq > consumer.delivered_seq, stream.c.seq <= last, wanted)
            .order_by(stream.c.seq)
            .limit(limit)
        ).all()
        reached = rows[-1].seq if len(rows) == limit else last
        matched: dict[str, bool] = {}
        for r in rows:
            if r.topic not in matched:
                matched[r.topic] = any(topic_matches(t, r.topic) for t in topics)
        first_wait = now + config.wait_after(1)
        if rows and all(matched.values()):  # as usual: the same rows, as pending, in one statement
            chosen = select(literal(consumer.subscriber), stream.c.seq, literal(1), literal(first_wait)).where(
                stream.c.seq > consumer.delivered_seq, stream.c.seq <= reached, wanted
            )
            conn.execute(insert(pending).from_select(["subscriber", "seq", "attempt", "due_at"], chosen))
        elif rows:
            rows = [r for r in rows if matched[r.topic]]
            pending_rows = [dict(subscriber=consumer.subscriber, seq=r.seq, attempt=1, due_at=first_wait) for r in rows]
            if pending_rows:
                conn.execute(insert(pending), pending_rows)
        conn.execute(
            update(consumers).where(consumers.c.subscriber == consumer.subscriber).values(delivered_seq=reached)
        )
        return [Delivery(_event(r), 1) for r in rows]

    async def ack(self, subscriber: str, event_ids: Sequence[str]) -> None:
        if not event_ids:
            return
        with self.engine.begin() as conn:
            for ids in _chunks(event_ids):
                conn.execute(_ACK, {"who": subscriber, "ids": list(ids)})
        if self._purge_more or time.monotonic() - self._purged_at >= self.purge_every:
            self.purge()

    async def nak(self, subscriber: str, event_ids: Sequence[str], delay: float = 0.0) -> None:
        if not event_ids:
            return
        with self.engine.begin() as conn:
            for ids in _chunks(event_ids):
                conn.execute(_NAK, {"who": subscriber, "ids": list(ids), "due": self.clock() + delay})

    def purge(self) -> int:
        """Drops the events every interested consumer acked, once past the duplicate window; returns how many.

        Scans at most ``purge_batch`` events from where the last purge stopped, wrapping around, so that a consumer
        holding many events back (one that is down) costs each purge no more than any other.
        """
        self._purged_at = time.monotonic()
        cutoff, wrap = self.clock() - self.duplicate_window, False
        with self.engine.begin() as conn:
            floors = _floors(conn)
            rows = conn.execute(
                select(stream.c.seq, stream.c.topic, stream.c.published_at)
                .where(stream.c.seq > self._purge_from)
                .order_by(stream.c.seq)
                .limit(self.purge_batch)
            ).all()
            limit_of: dict[str, float] = {}  # per topic: events up to here are acked by every consumer it matches
            dropped = []
            for seq, topic, published_at in rows:
                if published_at >= cutoff:  # and so are the ones after it (sequence order is publish order)
                    wrap = True
                    break
                if topic not in limit_of:
                    matching = [floor for topics, floor in floors if any(topic_matches(t, topic) for t in topics)]
                    limit_of[topic] = min(matching, default=float("inf"))
                if seq <= limit_of[topic]:
                    dropped.append(seq)
            for seqs in _chunks(dropped):
                conn.execute(_DROP, {"seqs": list(seqs)})
        wrap = wrap or len(rows) < self.purge_batch
        self._purge_from = 0 if wrap else rows[-1].seq
        self._purge_more = bool(dropped) and not wrap
        return len(dropped)


def _floors(conn: Connection) -> list[tuple[list[str], int]]:
    """Each consumer's topics and ack floor: every event up to the floor it acked or did not want."""
    unacked = dict(
        conn.execute(select(pending.c.subscriber, func.min(pending.c.seq)).group_by(pending.c.subscriber)).all()
    )
    return [
        (orjson.loads(c.topics), unacked[c.subscriber] - 1 if c.subscriber in unacked else c.delivered_seq)
        for c in conn.execute(select(consumers.c.subscriber, consumers.c.topics, consumers.c.delivered_seq)).all()
    ]


def _prefilter(topics: Sequence[str]):
    """The topics as SQL LIKE patterns: they may match more (a wildcard spans dots); the exact test follows."""
    patterns = []
    for topic in topics:
        escaped = topic.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        patterns.append(stream.c.topic.like(escaped.replace("*", "%").replace(">", "%"), escape="\\"))
    return or_(*patterns) if patterns else stream.c.seq < 0


def _seqs():
    """The sequence numbers of the events whose ids are bound to ``ids`` (a list, expanded when executed)."""
    return select(stream.c.seq).where(stream.c.event_id.in_(bindparam("ids", expanding=True)))


def _chunks(values: Sequence) -> Iterator[Sequence]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _row(event: Event, seq: int, now: float) -> dict:
    return {
        "seq": seq,
        "event_id": event.id,
        "topic": event.topic,
        "kind": event.kind,
        "source": event.source,
        "subject": event.subject,
        "payload": orjson.dumps(event.payload).decode(),
        "occurred_at": event.occurred_at,
        "published_at": now,
    }


def _event(row) -> Event:
    return Event(row.event_id, row.topic, row.kind, row.source, row.subject, orjson.loads(row.payload), row.occurred_at)


# Statements built once (their lists of ids are bound when executed, not coerced one by one when built).
_KNOWN = select(stream.c.event_id).where(stream.c.event_id.in_(bindparam("ids", expanding=True)))
_ACK = delete(pending).where(pending.c.subscriber == bindparam("who"), pending.c.seq.in_(_seqs()))
_DROP = delete(stream).where(stream.c.seq.in_(bindparam("seqs", expanding=True)))
_NAK = (
    update(pending)
    .where(pending.c.subscriber == bindparam("who"), pending.c.seq.in_(_seqs()))
    .values(due_at=bindparam("due"))
)
