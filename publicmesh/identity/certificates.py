"""Certificate profiles: auth (利用者証明用), signing (署名用) and wallet (スマホ用電子証明書), and the holder's facts.

An auth or wallet certificate names nobody: its subject is ``C=JP, CN=JPKI-AUTH-<random hex>``. A signing
certificate carries the holder's basic four facts (基本4情報) the way JPKI does, as ``otherName`` entries of
its subjectAltName, each a UTF8String under this project's own OID arc (see ``ARC``).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

AUTH, SIGNING, WALLET = "auth", "signing", "wallet"
KINDS = (AUTH, SIGNING, WALLET)

# A UUID-derived arc (ITU-T X.667: 2.25.<uuid>) needs no registration. JPKI itself puts the same facts
# under J-LIS's arc; these certificates are not J-LIS's, so they must not claim its OIDs.
ARC = "2.25.206530523888628320612684804955542375750"
NAME_OID = ObjectIdentifier(ARC + ".1.1")  # 氏名, as registered (kanji)
BIRTH_DATE_OID = ObjectIdentifier(ARC + ".1.2")  # 生年月日, ISO 8601 YYYY-MM-DD
SEX_OID = ObjectIdentifier(ARC + ".1.3")  # 性別, ISO 5218 code: 0 not known, 1 male, 2 female, 9 not applicable
ADDRESS_OID = ObjectIdentifier(ARC + ".1.4")  # 住所
POLICY_OIDS = {kind: ObjectIdentifier(f"{ARC}.2.{i}") for i, kind in enumerate(KINDS, start=1)}

_CN_PREFIX = {AUTH: "JPKI-AUTH-", SIGNING: "JPKI-SIGN-", WALLET: "JPKI-WALLET-"}
_SEXES = {"0": 0, "1": 1, "2": 2, "9": 9, "male": 1, "female": 2, "男": 1, "女": 2, "m": 1, "f": 2}


@dataclass(frozen=True)
class BasicInformation:
    """The basic four facts (基本4情報) a signing certificate carries, as the resident registry holds them."""

    name: str
    address: str
    birth_date: dt.date
    sex: int  # ISO 5218

    def __post_init__(self) -> None:
        if not self.name.strip() or not self.address.strip():
            raise ValueError("a signing certificate needs a name and an address")
        if self.sex not in (0, 1, 2, 9):
            raise ValueError(f"sex is an ISO 5218 code (0, 1, 2, 9), got {self.sex!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> BasicInformation:
        """From a registry record: name (or family_name and given_name), address, birth_date and sex."""
        name = data.get("name") or f"{data['family_name']}\u3000{data['given_name']}"
        birth = data["birth_date"]
        birth = dt.date.fromisoformat(birth) if isinstance(birth, str) else birth
        if isinstance(birth, dt.datetime):
            birth = birth.date()
        sex = data["sex"]
        sex = _SEXES[sex.strip().lower()] if isinstance(sex, str) else int(sex)
        return cls(name=str(name), address=str(data["address"]), birth_date=birth, sex=sex)


def new_key() -> ec.EllipticCurvePrivateKey:
    """An ECDSA P-256 key: what the card chip and WebCrypto both support."""
    return ec.generate_private_key(ec.SECP256R1())


def check_public_key(key: Any) -> ec.EllipticCurvePublicKey:
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("JPKI keys here are ECDSA P-256")
    return key


def serial_hex(serial: int) -> str:
    return format(serial, "x")


def build_ca_certificate(key: ec.EllipticCurvePrivateKey, name: str, days: int = 3650) -> x509.Certificate:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Public Service Mesh"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def build_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_certificate: x509.Certificate,
    public_key: ec.EllipticCurvePublicKey,
    kind: str,
    *,
    information: BasicInformation | None = None,
    not_after: dt.datetime,
) -> x509.Certificate:
    """A holder certificate of one profile; only ``signing`` takes (and requires) the basic four facts."""
    if kind not in KINDS:
        raise ValueError(f"unknown certificate kind {kind!r}")
    if (kind == SIGNING) != (information is not None):
        raise ValueError("exactly the signing certificate carries the basic four facts")
    check_public_key(public_key)
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.COMMON_NAME, _CN_PREFIX[kind] + secrets.token_hex(10).upper()),
        ]
    )
    signing = kind == SIGNING
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # digitalSignature, plus contentCommitment (non-repudiation) for the signing certificate.
        .add_extension(x509.KeyUsage(True, signing, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.CertificatePolicies([x509.PolicyInformation(POLICY_OIDS[kind], None)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_certificate.public_key()), critical=False)
    )
    if signing:
        builder = builder.add_extension(x509.SubjectAlternativeName(_other_names(information)), critical=False)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def kind_of(certificate: x509.Certificate) -> str | None:
    """The profile a certificate was issued under, from its certificate policy."""
    try:
        policies = certificate.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound:
        return None
    by_oid = {oid: kind for kind, oid in POLICY_OIDS.items()}
    kinds = {by_oid[p.policy_identifier] for p in policies if p.policy_identifier in by_oid}
    return kinds.pop() if len(kinds) == 1 else None


def basic_information(certificate: x509.Certificate) -> BasicInformation:
    """The basic four facts a signing certificate carries (raises ValueError for any other certificate)."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise ValueError("the certificate carries no basic four facts") from None
    values = {o.type_id: _utf8_string(o.value) for o in names.get_values_for_type(x509.OtherName)}
    try:
        return BasicInformation(
            name=values[NAME_OID],
            address=values[ADDRESS_OID],
            birth_date=dt.date.fromisoformat(values[BIRTH_DATE_OID]),
            sex=int(values[SEX_OID]),
        )
    except KeyError:
        raise ValueError("the certificate lacks one of the basic four facts") from None


def certificate_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def load_certificate(pem: str | bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)


def _other_names(info: BasicInformation) -> list[x509.GeneralName]:
    return [
        x509.OtherName(NAME_OID, _der_utf8(info.name)),
        x509.OtherName(BIRTH_DATE_OID, _der_utf8(info.birth_date.isoformat())),
        x509.OtherName(SEX_OID, _der_utf8(str(info.sex))),
        x509.OtherName(ADDRESS_OID, _der_utf8(info.address)),
    ]


def _der_utf8(text: str) -> bytes:
    data = text.encode("utf-8")
    n = len(data)
    if n < 0x80:
        length = bytes([n])
    else:
        width = (n.bit_length() + 7) // 8
        length = bytes([0x80 | width]) + n.to_bytes(width, "big")
    return b"\x0c" + length + data


def _utf8_string(der: bytes) -> str:
    if len(der) < 2 or der[0] != 0x0C:
        raise ValueError("not a DER UTF8String")
    if der[1] < 0x80:
        start, n = 2, der[1]
    else:
        width = der[1] & 0x7F
        start, n = 2 + width, int.from_bytes(der[2 : 2 + width], "big")
    if start + n != len(der):
        raise ValueError("bad DER UTF8String length")
    return der[start:].decode("utf-8")
