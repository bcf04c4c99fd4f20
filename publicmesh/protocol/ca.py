"""The mesh certificate authority: an Ed25519 root that certifies each member's signing key (X.509)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

from publicmesh.protocol.members import MemberId
from publicmesh.storage.private import write_private

_ORG = "Public Service Mesh"
_URN = "urn:publicmesh:member:"


class UntrustedCertificate(ValueError):
    """A member certificate that the mesh CA did not issue or that is not valid now."""


def write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_private(path, pem)


def read_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 key")
    return key


def certificate_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class MeshCA:
    key: Ed25519PrivateKey
    certificate: x509.Certificate

    @classmethod
    def load_or_create(cls, keys_dir: Path) -> MeshCA:
        key_path, cert_path = keys_dir / "mesh-ca.key", keys_dir / "mesh-ca.pem"
        if key_path.exists():
            return cls(read_private_key(key_path), x509.load_pem_x509_certificate(cert_path.read_bytes()))
        key = Ed25519PrivateKey.generate()
        name = x509.Name(
            [x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG), x509.NameAttribute(NameOID.COMMON_NAME, f"{_ORG} CA")]
        )
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(key, None)
        )
        write_private_key(key_path, key)
        cert_path.write_text(certificate_pem(cert))
        return cls(key, cert)

    def issue(self, member: MemberId, public_key: Ed25519PublicKey, days: int = 825) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, member.member_class),
                x509.NameAttribute(NameOID.COMMON_NAME, str(member)),
            ]
        )
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(_URN + str(member))]), critical=False
            )
            .sign(self.key, None)
        )


def verify_member_certificate(cert: x509.Certificate, ca_certificate: x509.Certificate) -> MemberId:
    """The member a certificate speaks for, if the mesh CA issued it and it is valid now."""
    try:
        cert.verify_directly_issued_by(ca_certificate)
    except Exception as exc:  # signature, issuer name or algorithm mismatch
        raise UntrustedCertificate(f"not issued by the mesh CA: {exc}") from None
    now = dt.datetime.now(dt.UTC)
    if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
        raise UntrustedCertificate("the certificate is not valid now")
    uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier
    )
    members = [u[len(_URN) :] for u in uris if u.startswith(_URN)]
    if len(members) != 1:
        raise UntrustedCertificate("the certificate names no single member")
    return MemberId.parse(members[0])
