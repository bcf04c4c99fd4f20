"""The smartphone wallet: enrolment from a WebCrypto public key, P1363 login, and revocation."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from publicmesh.identity import WALLET, IdentityError, LoginError, ResidentLogin, Wallets, kind_of, load_certificate

pytestmark = pytest.mark.storage


def spki(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def webcrypto_sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """What ``crypto.subtle.sign({name: "ECDSA", hash: "SHA-256"}, ...)`` returns: r||s, 32 bytes each."""
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@pytest.fixture
def wallets(engine, authority):
    return Wallets(engine, authority)


@pytest.fixture
def login(engine, authority):
    return ResidentLogin(engine, authority)


def test_enrol_log_in_with_p1363_and_revoke(wallets, login, card):
    phone = ec.generate_private_key(ec.SECP256R1())
    pem = wallets.enrol_wallet(card.person_ref, "Pixel 9", spki(phone))
    cert = load_certificate(pem)
    assert kind_of(cert) == WALLET
    assert load_certificate(card.auth_certificate_pem()).not_valid_after_utc == cert.not_valid_after_utc

    challenge = login.new_challenge()
    signature = webcrypto_sign(phone, challenge.nonce)
    assert len(signature) == 64
    assert login.verify_login(challenge.id, pem, signature) == card.person_ref

    [device] = wallets.list_wallets(card.person_ref)
    assert device.device_name == "Pixel 9" and device.active
    wallets.revoke_wallet(card.person_ref, device.device_id)
    assert wallets.list_wallets(card.person_ref) == []
    assert not wallets.list_wallets(card.person_ref, include_revoked=True)[0].active

    challenge = login.new_challenge()
    with pytest.raises(LoginError) as refused:
        login.verify_login(challenge.id, pem, webcrypto_sign(phone, challenge.nonce))
    assert refused.value.reason == "revoked"


def test_a_wallet_signature_must_be_p1363(wallets, login, card):
    phone = ec.generate_private_key(ec.SECP256R1())
    pem = wallets.enrol_wallet(card.person_ref, "phone", spki(phone))
    challenge = login.new_challenge()
    der = phone.sign(challenge.nonce, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(LoginError) as refused:
        login.verify_login(challenge.id, pem, der)
    assert refused.value.reason == "bad-signature"


def test_a_card_signature_may_arrive_as_raw_r_and_s(login, card):
    challenge = login.new_challenge()
    r, s = decode_dss_signature(card.sign_auth(challenge.nonce, "1234"))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert login.verify_login(challenge.id, card.auth_certificate_pem(), raw) == card.person_ref


def test_only_the_holder_revokes_a_wallet(wallets, card, new_ref):
    wallets.enrol_wallet(card.person_ref, "phone", spki(ec.generate_private_key(ec.SECP256R1())))
    [device] = wallets.list_wallets(card.person_ref)
    with pytest.raises(PermissionError):
        wallets.revoke_wallet(new_ref(), device.device_id)
    with pytest.raises(IdentityError):
        wallets.revoke_wallet(card.person_ref, "0" * 32)


def test_enrolment_needs_a_p256_key_and_a_card(wallets, card, authority, new_ref):
    with pytest.raises(IdentityError) as refused:
        wallets.enrol_wallet(card.person_ref, "phone", spki(Ed25519PrivateKey.generate()))
    assert refused.value.reason == "bad-key"
    with pytest.raises(IdentityError) as refused:
        wallets.enrol_wallet(card.person_ref, "phone", spki(ec.generate_private_key(ec.SECP384R1())))
    assert refused.value.reason == "bad-key"
    with pytest.raises(IdentityError) as refused:
        wallets.enrol_wallet(new_ref(), "phone", spki(ec.generate_private_key(ec.SECP256R1())))
    assert refused.value.reason == "no-card"
    authority.revoke_card(card.card_id)
    with pytest.raises(IdentityError) as refused:
        wallets.enrol_wallet(card.person_ref, "phone", spki(ec.generate_private_key(ec.SECP256R1())))
    assert refused.value.reason == "no-card"
