"""The JPKI-style certificate authority (公的個人認証): issues, revokes and verifies card and wallet certificates."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Connection, Engine, select, update

from publicmesh.identity import store
from publicmesh.identity.certificates import (
    SIGNING,
    BasicInformation,
    basic_information,
    build_ca_certificate,
    build_certificate,
    certificate_pem,
    kind_of,
    load_certificate,
    serial_hex,
)
from publicmesh.identity.errors import CertificateRevoked, IdentityError, UntrustedCertificate
from publicmesh.identity.keys import write_once

if TYPE_CHECKING:
    from publicmesh.identity.card import Certify, SoftwareCard

KEY_FILE = "jpki-ca.key"  # private key and certificate, PEM, mode 0600
CERTIFICATE_FILE = "jpki-ca.pem"  # the trust anchor, for relying parties
CA_NAME = "Public Service Mesh JPKI CA"
CARD_VALIDITY = dt.timedelta(days=5 * 365)
CRL_VALIDITY = dt.timedelta(days=1)


@dataclass(frozen=True)
class CertificateRecord:
    """One row of the issuance register."""

    serial: str
    kind: str
    person_ref: str
    card_id: str | None
    device_id: str | None
    status: str
    issued_at: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None
    reason: str | None


def reason_code(reason: str | x509.ReasonFlags) -> x509.ReasonFlags:
    """An RFC 5280 CRLReason from the enum, its value (``keyCompromise``) or its name (``key_compromise``)."""
    if isinstance(reason, x509.ReasonFlags):
        return reason
    try:
        return x509.ReasonFlags(reason)
    except ValueError:
        try:
            return x509.ReasonFlags[reason]
        except KeyError:
            raise ValueError(f"unknown revocation reason {reason!r}") from None


def _serial(serial: int | str) -> str:
    return serial_hex(serial) if isinstance(serial, int) else format(int(serial, 16), "x")


class JpkiAuthority:
    """The CA (P-256) and its issuance register in the identity store."""

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        certificate: x509.Certificate,
        engine: Engine,
        keys_dir: Path | None = None,
    ):
        self.key, self.certificate, self.engine, self.keys_dir = key, certificate, engine, keys_dir

    @classmethod
    def load_or_create(cls, keys_dir: Path, engine: Engine) -> JpkiAuthority:
        """Load the CA from ``keys_dir`` (creating a fresh one when missing) and create the store's tables."""
        keys_dir = Path(keys_dir)
        path = keys_dir / KEY_FILE
        if not path.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            write_once(path, pem + certificate_pem(build_ca_certificate(key, CA_NAME)).encode())
        bundle = path.read_bytes()
        key = serialization.load_pem_private_key(bundle[: bundle.index(b"-----BEGIN CERTIFICATE-----")], None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path} does not hold an EC key")
        certificate = load_certificate(bundle)
        anchor = keys_dir / CERTIFICATE_FILE
        if not anchor.exists():
            staging = keys_dir / f".{CERTIFICATE_FILE}.{uuid.uuid4().hex}.tmp"
            staging.write_text(certificate_pem(certificate))
            os.replace(staging, anchor)
        store.create_all(engine)
        return cls(key, certificate, engine, keys_dir)

    def certificate_pem(self) -> str:
        return certificate_pem(self.certificate)

    # Issuance

    def issue(
        self,
        public_key: ec.EllipticCurvePublicKey,
        kind: str,
        person_ref: str,
        *,
        card_id: str | None = None,
        device_id: str | None = None,
        information: BasicInformation | None = None,
        not_after: dt.datetime | None = None,
        conn: Connection | None = None,
    ) -> x509.Certificate:
        """Sign a holder certificate and enter it in the register (in ``conn``'s transaction when given)."""
        not_after = not_after or store.utc_now() + CARD_VALIDITY
        cert = build_certificate(
            self.key, self.certificate, public_key, kind, information=information, not_after=not_after
        )
        row = dict(
            serial=serial_hex(cert.serial_number),
            kind=kind,
            person_ref=person_ref,
            card_id=card_id,
            device_id=device_id,
            status="good",
            issued_at=store.utc_now(),
            not_after=cert.not_valid_after_utc,
            pem=certificate_pem(cert),
        )
        if conn is not None:
            store.ensure_person(conn, person_ref)
            conn.execute(store.certificates.insert().values(**row))
        else:
            with self.engine.begin() as own:
                store.ensure_person(own, person_ref)
                own.execute(store.certificates.insert().values(**row))
        return cert

    def certifier(self, person_ref: str, information: BasicInformation) -> Certify:
        """What a card calls to have its fresh keys certified: ``(card_id, kind, public_key, conn)``."""

        def certify(card_id: str, kind: str, public_key: Any, conn: Connection) -> x509.Certificate:
            info = information if kind == SIGNING else None
            return self.issue(public_key, kind, person_ref, card_id=card_id, information=info, conn=conn)

        return certify

    # Revocation (失効)

    def revoke(
        self, serial: int | str, reason: str | x509.ReasonFlags = "unspecified", *, conn: Connection | None = None
    ) -> bool:
        """Revoke a certificate; False when it already was. Raises IdentityError for a serial never issued."""
        serial = _serial(serial)
        if conn is None:
            with self.engine.begin() as own:
                return self.revoke(serial, reason, conn=own)
        if self._row(conn, serial) is None:
            raise IdentityError(f"no certificate {serial}", reason="unknown-certificate")
        return bool(_revoke(conn, store.certificates.c.serial == serial, reason))

    def revoke_card(self, card_id: str, reason: str | x509.ReasonFlags = "key_compromise") -> list[str]:
        """Revoke every certificate of a card (lost or stolen: 紛失)."""
        return self._revoke_where(store.certificates.c.card_id == card_id, reason)

    def on_address_change(self, person_ref: str) -> list[str]:
        """A move (転居) revokes the person's signing certificates, as JPKI does; the auth certificate stays."""
        return self._revoke_where(
            (store.certificates.c.person_ref == person_ref) & (store.certificates.c.kind == SIGNING),
            x509.ReasonFlags.affiliation_changed,
        )

    def reissue_signing_certificate(
        self, person: BasicInformation | Mapping[str, Any], card: SoftwareCard, *, signing_password: str | None = None
    ) -> x509.Certificate:
        """A new signing key and certificate on the card, with the person's current facts.

        The caller must first have had the person log in with the card's auth certificate.
        """
        information = person if isinstance(person, BasicInformation) else BasicInformation.from_mapping(person)
        certify = self.certifier(card.person_ref, information)
        table = store.certificates

        def replace(public_key: ec.EllipticCurvePublicKey, conn: Connection) -> x509.Certificate:
            # The old signing certificate (if a move has not already revoked it) goes with the new one's issue.
            _revoke(conn, (table.c.card_id == card.card_id) & (table.c.kind == SIGNING), x509.ReasonFlags.superseded)
            return certify(card.card_id, SIGNING, public_key, conn)

        return card.rekey_signing(replace, signing_password=signing_password)

    def _revoke_where(self, condition, reason: str | x509.ReasonFlags) -> list[str]:
        with self.engine.begin() as conn:
            return _revoke(conn, condition, reason)

    def crl(self) -> x509.CertificateRevocationList:
        """A CRL of every revoked certificate not yet expired, signed by the CA."""
        now = store.utc_now()
        table = store.certificates
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now)
            .next_update(now + CRL_VALIDITY)
            # Milliseconds since the epoch: increases from one CRL to the next, as RFC 5280 asks.
            .add_extension(x509.CRLNumber(int(now.timestamp() * 1000)), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(table.c.serial, table.c.revoked_at, table.c.reason).where(
                    table.c.status == "revoked", table.c.not_after > now
                )
            ).all()
        for serial, revoked_at, reason in rows:
            entry = x509.RevokedCertificateBuilder().serial_number(int(serial, 16)).revocation_date(revoked_at)
            if reason and reason != x509.ReasonFlags.unspecified.value:
                entry = entry.add_extension(x509.CRLReason(x509.ReasonFlags(reason)), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(self.key, hashes.SHA256())

    def crl_pem(self) -> str:
        return self.crl().public_bytes(serialization.Encoding.PEM).decode()

    # Status and verification

    def status(self, serial: int | str) -> str:
        """OCSP-like status of a serial (int or hex): ``good``, ``revoked`` or ``unknown`` (never issued here)."""
        record = self.record(serial)
        return "unknown" if record is None else record.status

    def record(self, serial: int | str) -> CertificateRecord | None:
        with self.engine.connect() as conn:
            return self._row(conn, _serial(serial))

    def certificates_of(
        self, person_ref: str, kind: str | None = None, *, good_only: bool = True
    ) -> list[CertificateRecord]:
        table = store.certificates
        query = select(*_RECORD_COLUMNS).where(table.c.person_ref == person_ref).order_by(table.c.issued_at)
        if kind:
            query = query.where(table.c.kind == kind)
        if good_only:
            query = query.where(table.c.status == "good")
        with self.engine.connect() as conn:
            return [CertificateRecord(**row._mapping) for row in conn.execute(query)]

    def check_issued(self, certificate: x509.Certificate, at: dt.datetime | None = None) -> None:
        """Raise UntrustedCertificate unless this CA signed the certificate and it is valid at ``at`` (now)."""
        try:
            certificate.verify_directly_issued_by(self.certificate)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise UntrustedCertificate(f"not issued by the JPKI authority: {exc}") from None
        at = at or store.utc_now()
        if not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
            raise UntrustedCertificate("the certificate is not valid now")

    def verify_chain(self, certificate: x509.Certificate) -> None:
        """Raise unless the certificate was issued by this CA, is valid now and is not revoked."""
        self.check_issued(certificate)
        record = self.record(certificate.serial_number)
        if record is None:
            raise UntrustedCertificate("the certificate is not in the issuance register", reason="unknown-card")
        if record.status != "good":
            raise CertificateRevoked(f"certificate {record.serial} was revoked ({record.reason})")

    def verify_signed_document(self, data: bytes, signature: bytes, certificate_pem: str) -> BasicInformation:
        """The signer's basic four facts, if ``signature`` (DER ECDSA/SHA-256) is theirs over ``data``."""
        certificate = load_certificate(certificate_pem)
        self.verify_chain(certificate)
        if kind_of(certificate) != SIGNING:
            raise UntrustedCertificate("not a signing certificate")
        try:
            certificate.public_key().verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise IdentityError("the signature does not verify", reason="bad-signature") from None
        return basic_information(certificate)

    def _row(self, conn: Connection, serial: str) -> CertificateRecord | None:
        row = conn.execute(select(*_RECORD_COLUMNS).where(store.certificates.c.serial == serial)).first()
        return None if row is None else CertificateRecord(**row._mapping)


_RECORD_COLUMNS = [store.certificates.c[name] for name in CertificateRecord.__dataclass_fields__]


def _revoke(conn: Connection, condition, reason: str | x509.ReasonFlags) -> list[str]:
    """Revoke the good certificates matching ``condition`` in ``conn``'s transaction; their serials."""
    code, table = reason_code(reason), store.certificates
    serials = list(conn.execute(select(table.c.serial).where(condition, table.c.status == "good")).scalars())
    if serials:
        conn.execute(
            update(table)
            .where(table.c.serial.in_(serials), table.c.status == "good")
            .values(status="revoked", revoked_at=store.utc_now(), reason=code.value)
        )
    return serials
