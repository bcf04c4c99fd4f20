"""The event transport's interface: publish with an id for dedup, a durable consumer per subscriber, ack, redelivery.

Its semantics are JetStream's, so that the embedded store and a NATS JetStream stream pass the same contract tests:
an event id is the ``Nats-Msg-Id``, a topic the NATS subject, a subscriber a durable pull consumer with explicit acks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Event:
    """One change announced by a member (e.g. a birth in a resident registry's outbox).

    ``subject`` is the person concerned, under the source's pseudonym; ``topic`` is what consumers filter on.
    """

    id: str  # unique per event: a second publish of the same id is a no-op
    topic: str  # dot-separated tokens, as a NATS subject: e.g. "MUNI.012084.resident-registry.birth.012084"
    kind: str  # the event type, e.g. "birth"
    source: str  # the member whose change it is
    subject: str
    payload: dict
    occurred_at: str  # ISO 8601


@dataclass(frozen=True)
class Delivery:
    """An event handed to a subscriber; ``attempt`` is 1 the first time, then counts redeliveries."""

    event: Event
    attempt: int


@dataclass(frozen=True)
class ConsumerConfig:
    """How a subscriber's durable consumer redelivers (JetStream's ConsumerConfig, the parts used here).

    ``backoff``, when given, replaces ``ack_wait`` per delivery: the n-th delivery waits ``backoff[n-1]`` (the last
    value repeating) for an ack before the event is delivered again.
    """

    ack_wait: float = 30.0
    backoff: tuple[float, ...] = ()

    def wait_after(self, attempt: int) -> float:
        """How long the ``attempt``-th delivery of an event waits for its ack."""
        if not self.backoff:
            return self.ack_wait
        return self.backoff[min(attempt, len(self.backoff)) - 1]


class EventTransport(Protocol):
    """Publishing and durable per-subscriber consumption; delivery is at least once, consumers are idempotent."""

    async def publish(self, events: Sequence[Event]) -> int:
        """Stores the events in order; returns how many were new (an id already published is skipped)."""
        ...

    async def subscribe(
        self, subscriber: str, topics: Sequence[str], config: ConsumerConfig = ConsumerConfig()
    ) -> None:
        """Creates or updates the subscriber's durable consumer; a new one starts at the first event still kept.

        ``topics`` are filters in NATS syntax: ``*`` matches one token, a final ``>`` one or more.
        """
        ...

    async def fetch(self, subscriber: str, max_events: int, wait: float = 0.0) -> list[Delivery]:
        """Up to ``max_events`` events for the subscriber, in publish order: due redeliveries, then new ones;
        waits up to ``wait`` seconds for one to arrive. What is fetched must be acked, or it comes again.
        Raises LookupError for a subscriber that never subscribed."""
        ...

    async def ack(self, subscriber: str, event_ids: Sequence[str]) -> None:
        """The subscriber is done with these events: they are never delivered to it again."""
        ...

    async def nak(self, subscriber: str, event_ids: Sequence[str], delay: float = 0.0) -> None:
        """The subscriber could not take these events: they come again after ``delay`` seconds."""
        ...


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether a NATS-style filter matches a topic: ``*`` stands for one token, a final ``>`` for the rest."""
    wanted, tokens = pattern.split("."), topic.split(".")
    for i, token in enumerate(wanted):
        if token == ">":
            return i == len(wanted) - 1 and len(tokens) > i
        if i >= len(tokens) or (token != "*" and token != tokens[i]):
            return False
    return len(tokens) == len(wanted)
