"""Resident login: a fresh single-use challenge signed with a trusted, unrevoked auth certificate."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import update

from publicmesh.identity import AUTH, JpkiAuthority, LoginError, ResidentLogin, certificate_pem, issue_card
from publicmesh.identity.certificates import build_certificate, load_certificate, new_key
from publicmesh.identity.store import challenges

pytestmark = pytest.mark.storage


@pytest.fixture
def login(engine, authority):
    return ResidentLogin(engine, authority)


def refused(login, challenge_id, pem, signature) -> str:
    with pytest.raises(LoginError) as error:
        login.verify_login(challenge_id, pem, signature)
    return error.value.reason


def test_a_card_login_gives_the_person_ref(login, card):
    challenge = login.new_challenge()
    assert len(challenge.nonce) == 32
    signature = card.sign_auth(challenge.nonce, "1234")
    assert login.verify_login(challenge.id, card.auth_certificate_pem(), signature) == card.person_ref


def test_an_expired_challenge_is_refused(login, card, engine):
    challenge = login.new_challenge()
    with engine.begin() as conn:
        conn.execute(
            update(challenges)
            .where(challenges.c.challenge_id == challenge.id)
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    signature = card.sign_auth(challenge.nonce, "1234")
    assert refused(login, challenge.id, card.auth_certificate_pem(), signature) == "expired-challenge"


def test_an_unknown_challenge_counts_as_expired(login, card):
    assert refused(login, "f" * 32, card.auth_certificate_pem(), b"") == "expired-challenge"


def test_a_challenge_is_good_once(login, card):
    challenge = login.new_challenge()
    signature = card.sign_auth(challenge.nonce, "1234")
    login.verify_login(challenge.id, card.auth_certificate_pem(), signature)
    assert refused(login, challenge.id, card.auth_certificate_pem(), signature) == "replayed-challenge"


def test_a_failed_attempt_still_uses_up_the_challenge(login, card):
    challenge = login.new_challenge()
    signature = card.sign_auth(challenge.nonce, "1234")
    assert refused(login, challenge.id, card.auth_certificate_pem(), signature[:-1] + b"\x00") == "bad-signature"
    assert refused(login, challenge.id, card.auth_certificate_pem(), signature) == "replayed-challenge"


def test_a_revoked_certificate_is_refused(login, card, authority):
    authority.revoke(load_certificate(card.auth_certificate_pem()).serial_number, "key_compromise")
    challenge = login.new_challenge()
    signature = card.sign_auth(challenge.nonce, "1234")
    assert refused(login, challenge.id, card.auth_certificate_pem(), signature) == "revoked"


def test_a_certificate_from_another_ca_is_refused(login, engine, tmp_path, cards, new_ref, hanako):
    stranger = JpkiAuthority.load_or_create(tmp_path / "rogue-keys", engine)
    rogue = issue_card(stranger, cards, new_ref(), hanako, "1234", "ABC123")
    challenge = login.new_challenge()
    signature = rogue.sign_auth(challenge.nonce, "1234")
    assert refused(login, challenge.id, rogue.auth_certificate_pem(), signature) == "untrusted"


def test_a_tampered_signature_is_refused(login, card):
    challenge = login.new_challenge()
    signature = bytearray(card.sign_auth(challenge.nonce, "1234"))
    signature[10] ^= 0x01
    assert refused(login, challenge.id, card.auth_certificate_pem(), bytes(signature)) == "bad-signature"


def test_a_signature_over_another_challenge_is_refused(login, card):
    first, second = login.new_challenge(), login.new_challenge()
    signature = card.sign_auth(first.nonce, "1234")
    assert refused(login, second.id, card.auth_certificate_pem(), signature) == "bad-signature"


def test_a_certificate_missing_from_the_register_is_an_unknown_card(login, authority):
    key = new_key()
    cert = build_certificate(
        authority.key,
        authority.certificate,
        key.public_key(),
        AUTH,
        not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
    )
    challenge = login.new_challenge()
    signature = key.sign(challenge.nonce, ec.ECDSA(hashes.SHA256()))
    assert refused(login, challenge.id, certificate_pem(cert), signature) == "unknown-card"


def test_the_signing_certificate_is_no_login_credential(login, card):
    challenge = login.new_challenge()
    signature = card.sign_document(challenge.nonce, "ABC123")
    assert refused(login, challenge.id, card.signing_certificate_pem(), signature) == "untrusted"


def test_garbage_certificate_is_untrusted(login):
    challenge = login.new_challenge()
    assert refused(login, challenge.id, "not a certificate", b"") == "untrusted"


def test_purge_removes_expired_challenges(login):
    login.new_challenge()
    assert login.purge_expired() == 0
    assert login.purge_expired(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=3)) == 1


def test_concurrent_uses_of_one_challenge_let_one_in(login, card):
    challenge = login.new_challenge()
    signature = card.sign_auth(challenge.nonce, "1234")
    outcomes: list[str] = []

    def attempt():
        try:
            outcomes.append(login.verify_login(challenge.id, card.auth_certificate_pem(), signature))
        except LoginError as error:
            outcomes.append(error.reason)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == sorted([card.person_ref] + ["replayed-challenge"] * 5)
