"""The hub's event transport follows the settings: the embedded store by default, JetStream for a nats:// URL."""

from __future__ import annotations

import pytest

from publicmesh.events import StoreTransport
from publicmesh.events.jetstream import JetStreamTransport
from publicmesh.hub.bootstrap import event_transport
from publicmesh.settings import Settings


def test_without_an_events_url_the_hub_routes_over_its_embedded_store(tmp_path):
    transport = event_transport(Settings(data_dir=tmp_path, database_url="", events_url=""))
    assert isinstance(transport, StoreTransport)
    transport.engine.dispose()


def test_a_nats_url_routes_events_over_jetstream_in_the_named_stream(tmp_path):
    settings = Settings(
        data_dir=tmp_path, events_url="nats://127.0.0.1:4222", events_stream="MESH_A", events_duplicate_window_s=600
    )
    transport = event_transport(settings)
    assert isinstance(transport, JetStreamTransport)
    assert (transport.url, transport.stream, transport.prefix) == ("nats://127.0.0.1:4222", "MESH_A", "MESH_A")
    assert transport.duplicate_window == 600
    assert not (tmp_path / "events.sqlite").exists()  # nothing opened until the first event


def test_any_other_events_url_is_refused(tmp_path):
    with pytest.raises(ValueError, match="nats://"):
        event_transport(Settings(data_dir=tmp_path, events_url="kafka://127.0.0.1:9092"))
