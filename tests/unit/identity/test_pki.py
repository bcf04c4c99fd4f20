"""The JPKI authority: certificate profiles, personal data only in the signing certificate, revocation and CRL."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from publicmesh.identity import (
    AUTH,
    SIGNING,
    BasicInformation,
    CertificateRevoked,
    IdentityError,
    JpkiAuthority,
    UntrustedCertificate,
    basic_information,
    kind_of,
    load_certificate,
)
from publicmesh.identity.certificates import build_certificate, new_key

pytestmark = pytest.mark.storage


def test_the_ca_is_created_once_and_reloaded(settings, engine, authority):
    again = JpkiAuthority.load_or_create(settings.keys_dir, engine)
    assert again.certificate == authority.certificate
    assert (settings.keys_dir / "jpki-ca.key").stat().st_mode & 0o777 == 0o600
    assert load_certificate((settings.keys_dir / "jpki-ca.pem").read_text()) == authority.certificate
    assert isinstance(authority.certificate.public_key().curve, ec.SECP256R1)


def test_the_auth_certificate_names_nobody(card):
    cert = load_certificate(card.auth_certificate_pem())
    assert kind_of(cert) == AUTH
    assert [a.oid for a in cert.subject] == [NameOID.COUNTRY_NAME, NameOID.COMMON_NAME]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value.startswith("JPKI-AUTH-")
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert "花子" not in card.auth_certificate_pem()
    with pytest.raises(ValueError):
        basic_information(cert)


def test_the_signing_certificate_carries_the_basic_four_facts(card, hanako):
    cert = load_certificate(card.signing_certificate_pem())
    assert kind_of(cert) == SIGNING
    assert basic_information(cert) == hanako
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.content_commitment
    assert "花子" not in cert.subject.rfc4514_string()


def test_basic_information_from_a_registry_record():
    info = BasicInformation.from_mapping(
        {"family_name": "北見", "given_name": "太郎", "address": "北見市", "birth_date": "1970-01-31", "sex": 1}
    )
    assert info == BasicInformation("北見\u3000太郎", "北見市", dt.date(1970, 1, 31), 1)
    with pytest.raises(ValueError):
        BasicInformation("名", "住所", dt.date(2000, 1, 1), 3)


def test_long_addresses_survive_the_extension(authority):
    info = BasicInformation("長い　住所", "東京都千代田区" + "一丁目" * 80, dt.date(2001, 2, 3), 9)
    cert = authority.issue(new_key().public_key(), SIGNING, "A" * 22, information=info)
    assert basic_information(cert) == info


def test_status_and_revocation(authority, card):
    serial = load_certificate(card.auth_certificate_pem()).serial_number
    assert authority.status(serial) == "good"
    assert authority.status(12345) == "unknown"
    assert authority.revoke(serial, "key_compromise") is True
    assert authority.revoke(serial, "keyCompromise") is False
    assert authority.status(serial) == "revoked"
    assert authority.record(serial).reason == "keyCompromise"
    with pytest.raises(IdentityError):
        authority.revoke(12345)
    with pytest.raises(ValueError):
        authority.revoke(serial, "bored")


def test_the_crl_lists_revoked_serials_and_verifies_with_the_ca_key(authority, card):
    auth = load_certificate(card.auth_certificate_pem())
    signing = load_certificate(card.signing_certificate_pem())
    authority.revoke(auth.serial_number, "key_compromise")
    crl = x509.load_pem_x509_crl(authority.crl_pem().encode())
    assert crl.is_signature_valid(authority.certificate.public_key())
    assert crl.issuer == authority.certificate.subject
    entry = crl.get_revoked_certificate_by_serial_number(auth.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    assert crl.get_revoked_certificate_by_serial_number(signing.serial_number) is None
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert not crl.is_signature_valid(other)


def test_verify_chain(authority, card, tmp_path, engine):
    auth = load_certificate(card.auth_certificate_pem())
    authority.verify_chain(auth)
    stranger = JpkiAuthority.load_or_create(tmp_path / "other-keys", engine)
    foreign = stranger.issue(new_key().public_key(), AUTH, "B" * 22)
    with pytest.raises(UntrustedCertificate):
        authority.verify_chain(foreign)
    authority.revoke(auth.serial_number)
    with pytest.raises(CertificateRevoked):
        authority.verify_chain(auth)


def test_an_expired_certificate_is_untrusted(authority):
    now = dt.datetime.now(dt.UTC)
    cert = authority.issue(new_key().public_key(), AUTH, "C" * 22, not_after=now + dt.timedelta(seconds=1))
    with pytest.raises(UntrustedCertificate):
        authority.check_issued(cert, at=now + dt.timedelta(seconds=5))


def test_a_certificate_outside_the_register_is_refused(authority):
    cert = build_certificate(
        authority.key,
        authority.certificate,
        new_key().public_key(),
        AUTH,
        not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
    )
    with pytest.raises(UntrustedCertificate) as refused:
        authority.verify_chain(cert)
    assert refused.value.reason == "unknown-card"


def test_a_move_revokes_the_signing_certificate_and_a_reissue_carries_the_new_address(authority, card, hanako):
    old = load_certificate(card.signing_certificate_pem())
    auth = load_certificate(card.auth_certificate_pem())
    assert authority.on_address_change(card.person_ref) == [format(old.serial_number, "x")]
    assert authority.status(old.serial_number) == "revoked"
    assert authority.record(old.serial_number).reason == "affiliationChanged"
    assert authority.status(auth.serial_number) == "good"

    moved = BasicInformation(hanako.name, "東京都千代田区永田町1丁目1番1号", hanako.birth_date, hanako.sex)
    new = authority.reissue_signing_certificate(moved, card)
    assert authority.status(new.serial_number) == "good"
    assert load_certificate(card.signing_certificate_pem()) == new
    signature = card.sign_document(b"application", "ABC123")
    assert authority.verify_signed_document(b"application", signature, card.signing_certificate_pem()) == moved
    with pytest.raises(CertificateRevoked):
        old_pem = old.public_bytes(serialization.Encoding.PEM).decode()
        authority.verify_signed_document(b"application", signature, old_pem)
    assert old.public_key().public_numbers() != new.public_key().public_numbers()


def test_a_reissue_can_set_a_new_signing_password(authority, card, hanako):
    authority.reissue_signing_certificate(hanako, card, signing_password="NEWPASS9")
    signature = card.sign_document(b"doc", "NEWPASS9")
    load_certificate(card.signing_certificate_pem()).public_key().verify(signature, b"doc", ec.ECDSA(hashes.SHA256()))


def test_a_tampered_document_signature_is_refused(authority, card):
    signature = card.sign_document(b"application", "ABC123")
    with pytest.raises(IdentityError) as refused:
        authority.verify_signed_document(b"applicatioN", signature, card.signing_certificate_pem())
    assert refused.value.reason == "bad-signature"
    with pytest.raises(UntrustedCertificate):  # the auth certificate is no signing certificate
        authority.verify_signed_document(b"application", signature, card.auth_certificate_pem())


def test_losing_a_card_revokes_all_its_certificates(authority, card):
    revoked = authority.revoke_card(card.card_id)
    assert len(revoked) == 2
    assert authority.certificates_of(card.person_ref) == []
