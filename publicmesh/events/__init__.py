"""Events (ground layer): the transport interface for publishing and consuming events, and its embedded form.

``EventTransport`` is what the hub routes over; ``StoreTransport`` keeps the stream and the consumers in a store
(SQLite or PostgreSQL). A NATS JetStream transport is the scale-out form; the contract tests hold for both.
"""

from publicmesh.events.store import StoreTransport
from publicmesh.events.transport import ConsumerConfig, Delivery, Event, EventTransport, topic_matches

__all__ = ["ConsumerConfig", "Delivery", "Event", "EventTransport", "StoreTransport", "topic_matches"]
