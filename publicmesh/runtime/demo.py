"""Demo identities: My Number Cards for a handful of Kitami residents, issued as the city's counter would, and
staff console accounts (a reviewer and an approver for each demo municipality, and one national operator).

Demo only: every card's auth PIN is 1234 and signing password ABC123. The card holder data comes from the
resident registry (the municipality issues cards), the person reference is the resident's pseudonym in the
portal's own domain, made by the number service.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets as random_source

from sqlalchemy import and_, select

from publicmesh.accounts import register_account, to_holder_kana, validate_account
from publicmesh.agencies.resident_registry import residents
from publicmesh.console.staff import NATIONAL, StaffDirectory, provisioning_uri
from publicmesh.identity import issue_demo_cards, open_identity
from publicmesh.numbers.keys import load_or_create_master
from publicmesh.numbers.pseudonyms import PseudonymService
from publicmesh.population.places import municipality
from publicmesh.portal.residents import ResidentDirectory
from publicmesh.settings import Settings
from publicmesh.storage import engine_for
from publicmesh.storage.private import write_private

DEMO_MUNICIPALITY = "012084"
AUTH_PIN = "1234"
SIGNING_PASSWORD = "ABC123"


def pick_demo_residents(settings: Settings, count: int = 12) -> list[dict]:
    """A family with children (both parents), a pensioner, an address-protected resident, then heads of households."""
    engine = engine_for("resident-registry", settings)
    r = residents.c
    living = and_(r.tenant == DEMO_MUNICIPALITY, r.status == "resident")
    with engine.connect() as conn:

        def first(*conditions, limit=1):
            query = select(residents).where(living, *conditions).order_by(r.pseudonym).limit(limit)
            return [dict(row._mapping) for row in conn.execute(query)]

        children = first(r.relation == "child", r.birth_date > dt.date(2012, 4, 1))
        family = (
            first(r.household_no == children[0]["household_no"], r.relation.in_(["head", "spouse"]), limit=2)
            if children
            else []
        )
        picked = family + first(r.birth_date < dt.date(1955, 1, 1)) + first(r.address_protected.is_(True))
        seen = {p["pseudonym"] for p in picked}
        # the rest head their households: a service for households is offered to its head, so each has their own
        others = [
            p
            for p in first(r.birth_date < dt.date(2006, 1, 1), r.relation.in_(["head", "single"]), limit=count * 2)
            if p["pseudonym"] not in seen
        ]
        picked += others[: max(0, count - len(picked))]
    engine.dispose()
    return picked


def issue_demo_identities(settings: Settings) -> list[dict]:
    """Cards for the demo residents; writes data_dir/demo-cards.json (labels for the login page)."""
    people = pick_demo_residents(settings)
    service = PseudonymService(load_or_create_master(settings.keys_dir))
    refs = service.convert([p["pseudonym"] for p in people], "resident-registry", ["portal"])["portal"]
    identity = open_identity(settings)
    cards = issue_demo_cards(
        identity.engine,
        identity.authority,
        refs,
        [
            {
                "name": f"{p['family_name']} {p['given_name']}",
                "address": p["address"],
                "birth_date": p["birth_date"].isoformat(),
                "sex": p["sex"],
            }
            for p in people
        ],
    )
    directory = ResidentDirectory(identity.engine)
    labels = []
    for p, ref, card in zip(people, refs, cards):
        name = f"{p['family_name']} {p['given_name']}"
        directory.record(ref, DEMO_MUNICIPALITY, name)
        labels.append(
            {
                "card_id": card.card_id,
                "label": f"{name}（{p['family_name_kana']} {p['given_name_kana']}）",
                "relation": p["relation"],
            }
        )
    write_private(settings.data_dir / "demo-cards.json", json.dumps(labels, ensure_ascii=False, indent=1).encode())
    return labels


def issue_demo_staff(settings: Settings, codes: tuple[str, ...] | list[str]) -> list[dict]:
    """A reviewer and an approver for each demo municipality and one national operator (operator.national, who
    publishes services), in the console's staff accounts; writes their passwords and TOTP secrets to
    data_dir/demo-staff.json (read by ``publicmesh staff demo``). Re-issued at every seed, so the file always
    matches the accounts."""
    engine = engine_for("services", settings)
    directory = StaffDirectory.open(engine, settings.keys_dir)
    accounts = []

    def issue(username: str, code: str, name: str, role: str) -> None:
        password = random_source.token_urlsafe(12)
        directory.remove(username)
        secret = directory.create_staff(code, username, password, {role})
        accounts.append(
            {
                "username": username,
                "municipality": code,
                "municipality_name": name,
                "roles": [role],
                "password": password,
                "totp_secret": secret,
                "provisioning_uri": provisioning_uri(username, secret),
            }
        )

    for code in codes:
        try:
            name = municipality(code).name
        except KeyError:
            name = code
        for role in ("reviewer", "approver"):
            issue(f"{role}.{code}", code, name, role)
    issue("operator.national", NATIONAL, "全国", "operator")
    engine.dispose()
    path = settings.data_dir / "demo-staff.json"
    # passwords: DEMO ONLY, but still not for every local user to read
    write_private(path, json.dumps(accounts, ensure_ascii=False, indent=1).encode())
    return accounts


def register_demo_account(settings: Settings, card: dict) -> None:
    """A public-fund account for a demo card holder, as they would register it once in 設定 (demo only)."""
    person_ref = open_identity(settings).cards.card(card["card_id"]).person_ref
    kana = re.search(r"（(.+)）", card["label"]).group(1)
    family, given = kana.split()
    account = validate_account("0001", "100", "ordinary", "7654321", to_holder_kana(kana))
    engine = engine_for("accounts", settings)
    try:
        register_account(engine, person_ref, account, family, given)
    finally:
        engine.dispose()
