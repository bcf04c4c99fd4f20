"""Access rules (アクセスルール): consumer system × affair × provider dataset × attributes × legal basis.

Like the annexed table of the My Number Act: anything no rule allows is refused. ``{code}`` in a
consumer and provider pattern binds to the same municipality, so a city's systems see only that city.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from publicmesh import safe_yaml
from publicmesh.protocol.members import MemberId


def _match(pattern: str, member: MemberId, bindings: dict[str, str]) -> bool:
    p_class, p_code, p_system = pattern.split("/")
    if p_class != member.member_class or p_system != member.system:
        return False
    if p_code == "{code}":
        bound = bindings.setdefault("code", member.code)
        return bound == member.code
    return p_code in ("*", member.code)


def _affair_matches(pattern: str, affair: str) -> bool:
    """'specified-public-benefit:*' covers 'specified-public-benefit:emergency-benefit' (one affair per service)."""
    if pattern.endswith(":*"):
        return affair.startswith(pattern[:-1]) and len(affair) > len(pattern) - 1
    return pattern == affair


@dataclass(frozen=True)
class AccessRule:
    id: str
    consumer: str
    affair: str
    affair_ja: str
    provider: str
    dataset: str
    attributes: tuple[str, ...]
    legal_basis: str
    protected_addresses: str = "withhold"  # or "allow" (e.g. for the police or the court)
    # May the consumer ask for every subject of a municipality (a scan)? The services part reads whole every source
    # whose rule allows it when it reads everyone (services/fetch.py), and lists the others.
    scan: bool = False
    write: bool = False  # the query carries a submission (e.g. an application) the provider acts on
    basis: str = "law"  # or "consent": the query must also name the person's consent (本人同意), checked per exchange

    def allows(self, consumer: MemberId, provider: MemberId) -> bool:
        bindings: dict[str, str] = {}
        return _match(self.consumer, consumer, bindings) and _match(self.provider, provider, bindings)


@dataclass(frozen=True)
class EventRule:
    id: str
    provider: str
    event: str
    subscriber: str
    attributes: tuple[str, ...]
    pseudonym_fields: tuple[str, ...]
    legal_basis: str
    affair: str

    def subscriber_for(self, provider: MemberId, data: dict) -> MemberId | None:
        """The subscribing member for one event; {code} follows the provider's or the event's municipality."""
        if not _match(self.provider, provider, {}):
            return None
        s_class, s_code, s_system = self.subscriber.split("/")
        if s_code == "{code}":
            s_code = provider.code if provider.member_class == "MUNI" else str(data.get("municipality_code", ""))
        try:
            return MemberId.parse(f"{s_class}/{s_code}/{s_system}")
        except ValueError:
            return None


@dataclass
class RuleBook:
    rules: list[AccessRule]
    event_rules: list[EventRule]

    @classmethod
    def load(cls, path: Path | None = None) -> RuleBook:
        path = path or (Path(os.environ["PUBLICMESH_RULES"]) if os.environ.get("PUBLICMESH_RULES") else None)
        text = (
            path.read_text(encoding="utf-8")
            if path
            else resources.files("publicmesh.hub").joinpath("rules.yaml").read_text(encoding="utf-8")
        )
        doc = safe_yaml.load(text)
        rules = [AccessRule(**{**r, "attributes": tuple(r["attributes"])}) for r in doc.get("rules", [])]
        events = [
            EventRule(
                **{**r, "attributes": tuple(r["attributes"]), "pseudonym_fields": tuple(r.get("pseudonym_fields", []))}
            )
            for r in doc.get("event_rules", [])
        ]
        return cls(rules, events)

    def authorize(
        self, consumer: MemberId, affair: str, provider: MemberId, dataset: str, attributes: list[str]
    ) -> AccessRule | None:
        """The rule allowing all these attributes for this affair, or None."""
        for rule in self.rules:
            if (
                _affair_matches(rule.affair, affair)
                and rule.dataset == dataset
                and rule.allows(consumer, provider)
                and set(attributes) <= set(rule.attributes)
            ):
                return rule
        return None

    def subscriptions(self, provider: MemberId) -> list[EventRule]:
        return [r for r in self.event_rules if _match(r.provider, provider, {})]
