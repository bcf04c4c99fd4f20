"""Card issuance (交付): a card with keys and certificates for a resident, and the demo cards of the seed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from publicmesh.identity.card import CardStore, SoftwareCard
from publicmesh.identity.certificates import BasicInformation
from publicmesh.identity.pki import JpkiAuthority

# DEMO ONLY: every demo card shares these, so anyone reading this file can log in as any demo resident.
# Never use issue_demo_cards for real residents; they choose their own PINs at the counter.
DEMO_AUTH_PIN = "1234"
DEMO_SIGNING_PASSWORD = "ABC123"


@dataclass(frozen=True)
class DemoCard:
    person_ref: str
    card_id: str
    auth_pin: str
    signing_password: str
    auth_certificate_pem: str
    signing_certificate_pem: str


def issue_card(
    authority: JpkiAuthority,
    cards: CardStore,
    person_ref: str,
    person: BasicInformation | Mapping[str, Any],
    auth_pin: str,
    signing_password: str,
) -> SoftwareCard:
    """A new card whose signing certificate carries the person's basic four facts."""
    information = person if isinstance(person, BasicInformation) else BasicInformation.from_mapping(person)
    return cards.create(person_ref, auth_pin, signing_password, authority.certifier(person_ref, information))


def issue_demo_cards(
    engine: Engine,
    authority: JpkiAuthority,
    person_refs: Sequence[str],
    persons: Sequence[Mapping[str, Any]],
    *,
    cards: CardStore | None = None,
) -> list[DemoCard]:
    """One demo card per resident (auth PIN 1234, signing password ABC123); a resident who has one keeps it.

    ``persons[i]`` is the resident registry's record of ``person_refs[i]``: ``name`` (or ``family_name`` and
    ``given_name``), ``address``, ``birth_date`` and ``sex``. ``cards`` defaults to the store under the
    authority's keys folder.
    """
    if len(person_refs) != len(persons):
        raise ValueError("person_refs and persons must be parallel lists")
    if cards is None:
        if authority.keys_dir is None:
            raise ValueError("pass cards= when the authority was not loaded from a keys folder")
        cards = CardStore.open(engine, authority.keys_dir)
    issued = []
    for person_ref, person in zip(person_refs, persons, strict=True):
        existing = cards.cards_of(person_ref)
        card = (
            existing[0]
            if existing
            else issue_card(authority, cards, person_ref, person, DEMO_AUTH_PIN, DEMO_SIGNING_PASSWORD)
        )
        issued.append(
            DemoCard(
                person_ref,
                card.card_id,
                DEMO_AUTH_PIN,
                DEMO_SIGNING_PASSWORD,
                card.auth_certificate_pem(),
                card.signing_certificate_pem(),
            )
        )
    return issued
