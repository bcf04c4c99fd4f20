"""The software card: PIN formats, retry counters, lockout, unlock, and keys at rest."""

from __future__ import annotations

import threading

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from publicmesh.identity import AUTH_TRIES, SIGNING_TRIES, CardError, CardLocked, CardStore, WrongPin, load_certificate
from publicmesh.identity.card import check_signing_password
from publicmesh.identity.store import cards as cards_table

pytestmark = pytest.mark.storage


def verify(pem: str, signature: bytes, data: bytes) -> None:
    load_certificate(pem).public_key().verify(signature, data, ec.ECDSA(hashes.SHA256()))


def test_auth_signature_verifies_with_the_auth_certificate(card):
    signature = card.sign_auth(b"challenge", "1234")
    verify(card.auth_certificate_pem(), signature, b"challenge")


def test_three_wrong_auth_pins_lock_the_slot(card):
    for left in (2, 1):
        with pytest.raises(WrongPin) as wrong:
            card.sign_auth(b"x", "0000")
        assert wrong.value.tries_left == left
    with pytest.raises(CardLocked):
        card.sign_auth(b"x", "0000")
    with pytest.raises(CardLocked):  # even the right PIN is refused now
        card.sign_auth(b"x", "1234")
    status = card.status()
    assert status.auth_locked and not status.signing_locked


def test_a_right_pin_before_lockout_resets_the_counter(card):
    for _ in range(AUTH_TRIES - 1):
        with pytest.raises(WrongPin):
            card.sign_auth(b"x", "9999")
    card.sign_auth(b"x", "1234")
    assert card.status().auth_tries_left == AUTH_TRIES
    for _ in range(AUTH_TRIES - 1):
        with pytest.raises(WrongPin):
            card.sign_auth(b"x", "9999")
    card.sign_auth(b"x", "1234")


def test_the_counter_persists_across_card_objects(card, cards, engine, settings):
    with pytest.raises(WrongPin):
        card.sign_auth(b"x", "0000")
    again = CardStore.open(engine, settings.keys_dir).card(card.card_id)
    assert again.status().auth_tries_left == AUTH_TRIES - 1


def test_five_wrong_signing_passwords_lock_signing_only(card):
    for left in range(SIGNING_TRIES - 1, 0, -1):
        with pytest.raises(WrongPin) as wrong:
            card.sign_document(b"doc", "WRONG1")
        assert wrong.value.tries_left == left
    with pytest.raises(CardLocked):
        card.sign_document(b"doc", "WRONG1")
    with pytest.raises(CardLocked):
        card.sign_document(b"doc", "ABC123")
    card.sign_auth(b"x", "1234")  # the auth slot is unaffected


@pytest.mark.parametrize("password", ["ABC12", "abc123", "ABCDEF", "123456", "ABC-123", "A" * 16 + "1", "ＡＢＣ１２３"])
def test_signing_password_format(password):
    with pytest.raises(CardError) as refused:
        check_signing_password(password)
    assert refused.value.reason == "bad-pin-format"


@pytest.mark.parametrize("password", ["ABC123", "A1B2C3D4E5F6G7H8", "1A2345"])
def test_valid_signing_passwords(password):
    assert check_signing_password(password) == password


def test_a_badly_formed_pin_spends_no_try(card):
    with pytest.raises(CardError):
        card.sign_auth(b"x", "12345")
    with pytest.raises(CardError):
        card.sign_document(b"x", "abc123")
    status = card.status()
    assert (status.auth_tries_left, status.signing_tries_left) == (AUTH_TRIES, SIGNING_TRIES)


def test_the_counter_unlocks_with_a_new_pin(card, cards):
    for _ in range(AUTH_TRIES):
        with pytest.raises((WrongPin, CardLocked)):
            card.sign_auth(b"x", "0000")
    with pytest.raises(ValueError):
        cards.unlock(card.card_id)
    cards.unlock(card.card_id, auth_pin="5678")
    with pytest.raises(WrongPin):
        card.sign_auth(b"x", "1234")
    verify(card.auth_certificate_pem(), card.sign_auth(b"x", "5678"), b"x")


def test_private_keys_are_not_stored_in_the_clear(card, engine):
    with engine.connect() as conn:
        row = conn.execute(select(cards_table).where(cards_table.c.card_id == card.card_id)).one()
    for sealed in (row.auth_key, row.signing_key):
        with pytest.raises(ValueError):
            serialization.load_der_private_key(sealed, None)
    assert b"1234" not in row.auth_pin and b"ABC123" not in row.signing_pin


def test_a_retired_card_does_not_sign(card, cards):
    cards.retire(card.card_id)
    with pytest.raises(CardError) as refused:
        card.sign_auth(b"x", "1234")
    assert refused.value.reason == "card-retired"


def test_unknown_card(cards):
    with pytest.raises(CardError):
        cards.card("0" * 32)


def test_concurrent_wrong_pins_spend_exactly_the_tries_there_are(card):
    outcomes: list[str] = []

    def attempt():
        try:
            card.sign_auth(b"x", "0000")
        except WrongPin:
            outcomes.append("wrong")
        except CardLocked:
            outcomes.append("locked")

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["locked"] * 6 + ["wrong"] * 2
    assert card.status().auth_tries_left == 0


def test_a_card_and_its_certificates_are_stored_together_or_not_at_all(authority, cards, hanako, new_ref):
    ref = new_ref()
    certify = authority.certifier(ref, hanako)

    def fail_on_signing(card_id, kind, public_key, conn):
        if kind == "signing":
            raise RuntimeError("printer jam")
        return certify(card_id, kind, public_key, conn)

    with pytest.raises(RuntimeError):
        cards.create(ref, "1234", "ABC123", fail_on_signing)
    assert authority.certificates_of(ref, good_only=False) == []
    assert cards.cards_of(ref) == []
