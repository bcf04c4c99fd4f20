"""Events (ground layer): the transport interface for publishing and consuming events, and its embedded form.

``EventTransport`` is what the hub routes over; ``StoreTransport`` keeps the stream and the consumers in a store
(SQLite or PostgreSQL). ``events.jetstream.JetStreamTransport`` is the scale-out form on NATS JetStream (imported from
there, so that the embedded path does not load the NATS client); the contract tests hold for both.
"""

from publicmesh.events.store import StoreTransport
from publicmesh.events.transport import ConsumerConfig, Delivery, Event, EventTransport, topic_matches

__all__ = ["ConsumerConfig", "Delivery", "Event", "EventTransport", "StoreTransport", "topic_matches"]
