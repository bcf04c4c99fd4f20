"""Topics of routed events and the filters of subscribers' consumers: a filter takes every event the rules may
send that subscriber, and a municipality's subscriber no other municipality's events."""

from __future__ import annotations

from publicmesh.events import topic_matches
from publicmesh.hub.event_topics import subscribes, topic_filter, topic_of
from publicmesh.hub.rules import EventRule
from publicmesh.protocol.members import MemberId

KITAMI, SAPPORO = "012084", "011002"


def _rule(provider: str, event: str, subscriber: str) -> EventRule:
    return EventRule("r", provider, event, subscriber, ("a",), (), "law", "affair")


def _routes(rule: EventRule, provider: str, data: dict, subscriber: str) -> tuple[bool, bool]:
    """Whether the rule sends the event to the subscriber, and whether the subscriber's filter takes it."""
    p, s = MemberId.parse(provider), MemberId.parse(subscriber)
    sent = rule.subscriber_for(p, data) == s
    return sent, subscribes(rule, s) and topic_matches(topic_filter(rule, s), topic_of(p, rule.event, data))


def test_a_municipal_subscriber_takes_its_own_municipalitys_events_only():
    rule = _rule("MUNI/{code}/resident-registry", "birth", "MUNI/{code}/child-allowance")
    registry = f"MUNI/{KITAMI}/resident-registry"
    assert _routes(rule, registry, {}, f"MUNI/{KITAMI}/child-allowance") == (True, True)
    assert _routes(rule, registry, {}, f"MUNI/{SAPPORO}/child-allowance") == (False, False)


def test_a_national_subscriber_takes_every_municipalitys_events():
    rule = _rule("MUNI/*/resident-registry", "death", "GOV/jps/pension")
    for code in (KITAMI, SAPPORO):
        assert _routes(rule, f"MUNI/{code}/resident-registry", {}, "GOV/jps/pension") == (True, True)
    assert not subscribes(rule, MemberId.parse("GOV/mhlw/health-insurance"))


def test_a_national_providers_event_follows_its_municipality_code():
    rule = _rule("GOV/nta/national-tax", "income-update", "MUNI/{code}/local-tax")
    data = {"municipality_code": KITAMI}
    assert _routes(rule, "GOV/nta/national-tax", data, f"MUNI/{KITAMI}/local-tax") == (True, True)
    assert _routes(rule, "GOV/nta/national-tax", data, f"MUNI/{SAPPORO}/local-tax") == (False, False)


def test_a_value_that_cannot_be_a_topic_token_becomes_a_placeholder():
    topic = topic_of(MemberId.parse("GOV/nta/national-tax"), "income-update", {"municipality_code": "01.2>"})
    assert topic == "GOV.nta.national-tax.income-update.-"
