"""The JetStream transport's naming: consumer names for member ids, and the one filter covering several topics."""

from __future__ import annotations

import pytest
from nats.js import api

from publicmesh.events import topic_matches
from publicmesh.events.jetstream import JetStreamTransport, consumer_name, covering_filter


def test_a_member_id_becomes_a_name_jetstream_takes():
    assert consumer_name("GOV/mhlw/health-insurance") == "GOV_2Fmhlw_2Fhealth-insurance"
    assert consumer_name("MUNI/012084/a.b*c>d") == "MUNI_2F012084_2Fa_2Eb_2Ac_3Ed"
    assert consumer_name("A/b") != consumer_name("A_b")


@pytest.mark.parametrize(
    ("topics", "covering"),
    [
        (["MUNI.*.resident-registry.birth.*"], "MUNI.*.resident-registry.birth.*"),
        (["MUNI.*.rr.birth.012084", "MUNI.*.rr.death.012084"], "MUNI.*.rr.*.012084"),
        (["GOV.nta.tax.update.1", "MUNI.1.rr.birth.1"], "*.*.*.*.1"),
        (["a.b", "a.b.c"], "a.>"),
        (["a.>", "a.b.c"], "a.>"),
        ([">"], ">"),
        (["a.b.>", "a.c.>"], "a.*.>"),
        ([], "_none"),
    ],
)
def test_the_covering_filter_is_the_narrowest_one_that_matches_all(topics, covering):
    assert covering_filter(topics) == covering
    for topic in ["a.b", "a.b.c", "a.c.d.e", "MUNI.1.rr.birth.1", "MUNI.2.rr.death.012084", "GOV.nta.tax.update.1"]:
        if any(topic_matches(t, topic) for t in topics):
            assert topic_matches(covering, topic)


def test_a_consumer_made_elsewhere_is_read_with_its_filter_as_its_topics():
    transport = JetStreamTransport("nats://127.0.0.1:1", stream="S")
    given = api.ConsumerConfig(
        description='["MUNI.*.rr.birth.*", "MUNI.*.rr.death.*"]', filter_subject="S.MUNI.*.rr.*.*"
    )
    assert transport._topics(given) == ["MUNI.*.rr.birth.*", "MUNI.*.rr.death.*"]
    assert transport._topics(api.ConsumerConfig(description="made by hand", filter_subject="S.GOV.>")) == ["GOV.>"]
    assert transport._topics(api.ConsumerConfig()) == [">"]
