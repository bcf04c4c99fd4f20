"""Topics of the events the hub routes, and the topic filters of each subscriber's consumer.

An outbox event of ``MUNI/012084/resident-registry`` of kind ``birth`` has the topic
``MUNI.012084.resident-registry.birth.012084``: the provider's tokens, the kind, and the municipality it concerns
(the provider's own for a municipal system, else the event's ``municipality_code``). A ``{code}`` subscriber such
as ``MUNI/{code}/local-tax`` then filters on its own municipality only; the rules still decide each delivery.
"""

from __future__ import annotations

import re

from publicmesh.hub.rules import EventRule
from publicmesh.protocol.members import MemberId

_TOKEN = re.compile(r"[0-9A-Za-z_\-]+")


def topic_of(provider: MemberId, kind: str, data: dict) -> str:
    area = provider.code if provider.member_class == "MUNI" else str(data.get("municipality_code") or "-")
    tokens = (provider.member_class, provider.code, provider.system, kind, area)
    return ".".join(t if _TOKEN.fullmatch(t) else "-" for t in tokens)


def topic_filter(rule: EventRule, subscriber: MemberId) -> str:
    """The events of ``rule`` that may reach ``subscriber``: a ``{code}`` binds provider and area to its code."""
    p_class, p_code, p_system = rule.provider.split("/")
    bound = rule.subscriber.split("/")[1] == "{code}"
    if p_code == "{code}":
        p_code = subscriber.code if bound else "*"
    return ".".join((p_class, p_code, p_system, rule.event, subscriber.code if bound else "*"))


def subscribes(rule: EventRule, member: MemberId) -> bool:
    """Whether ``member`` is one of the subscribers the rule names (a ``{code}`` names every municipality's)."""
    s_class, s_code, s_system = rule.subscriber.split("/")
    return member.member_class == s_class and member.system == s_system and s_code in ("{code}", member.code)
