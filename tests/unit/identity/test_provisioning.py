"""Card issuance and the demo cards of the seed."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from timing import budget

from publicmesh.identity import (
    DEMO_AUTH_PIN,
    DEMO_SIGNING_PASSWORD,
    BasicInformation,
    ResidentLogin,
    basic_information,
    issue_demo_cards,
    load_certificate,
    open_identity,
)

pytestmark = pytest.mark.storage


def registry_record(i: int) -> dict:
    return {
        "family_name": "北見",
        "given_name": f"太郎{i}",
        "address": f"北海道北見市青葉町{i}番1号",
        "birth_date": dt.date(1980, 1, 1) + dt.timedelta(days=i),
        "sex": 1 + i % 2,
    }


def test_fifty_demo_cards_quickly(engine, authority, new_ref):
    refs = [new_ref() for _ in range(50)]
    started = time.perf_counter()
    demo = issue_demo_cards(engine, authority, refs, [registry_record(i) for i in range(50)])
    assert time.perf_counter() - started < budget(5)
    assert [d.person_ref for d in demo] == refs
    assert {(d.auth_pin, d.signing_password) for d in demo} == {(DEMO_AUTH_PIN, DEMO_SIGNING_PASSWORD)}
    info = basic_information(load_certificate(demo[7].signing_certificate_pem))
    assert info == BasicInformation("北見\u3000太郎7", "北海道北見市青葉町7番1号", dt.date(1980, 1, 8), 2)


def test_demo_cards_log_in_and_are_issued_once(engine, authority, cards, new_ref):
    ref = new_ref()
    [first] = issue_demo_cards(engine, authority, [ref], [registry_record(1)], cards=cards)
    [again] = issue_demo_cards(engine, authority, [ref], [registry_record(1)], cards=cards)
    assert again.card_id == first.card_id
    card = cards.card(first.card_id)
    login = ResidentLogin(engine, authority)
    challenge = login.new_challenge()
    assert login.verify_login(challenge.id, first.auth_certificate_pem, card.sign_auth(challenge.nonce, "1234")) == ref


def test_parallel_lists_are_required(engine, authority, new_ref):
    with pytest.raises(ValueError):
        issue_demo_cards(engine, authority, [new_ref()], [])


def test_open_identity_wires_every_part(settings, engine):
    identity = open_identity(settings, engine)
    assert identity.authority.keys_dir == settings.keys_dir
    assert identity.login.authority is identity.authority
