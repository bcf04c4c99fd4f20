"""Trust in member keys: certificates checked against the mesh CA, cached by member id."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from publicmesh.protocol.ca import UntrustedCertificate, verify_member_certificate
from publicmesh.protocol.signatures import SignatureError

CERTIFICATE_HEADER = "mesh-certificate"


class TrustStore:
    """Member keys a node trusts, learned from certificates that the mesh CA issued."""

    def __init__(self, ca_certificate: x509.Certificate):
        self._ca = ca_certificate
        self._keys: dict[str, Ed25519PublicKey] = {}

    @classmethod
    def from_keys_dir(cls, keys_dir: Path) -> TrustStore:
        return cls(x509.load_pem_x509_certificate((keys_dir / "mesh-ca.pem").read_bytes()))

    def add_pem(self, pem: str | bytes) -> str:
        """Learn a member certificate; returns the member id. Raises UntrustedCertificate."""
        data = pem.encode() if isinstance(pem, str) else pem
        try:
            cert = x509.load_pem_x509_certificate(data)
        except ValueError as exc:
            raise UntrustedCertificate(f"unreadable certificate: {exc}") from None
        member = str(verify_member_certificate(cert, self._ca))
        key = cert.public_key()
        if not isinstance(key, Ed25519PublicKey):
            raise UntrustedCertificate("member keys are Ed25519")
        self._keys[member] = key
        return member

    def remove(self, member: str) -> None:
        self._keys.pop(member, None)

    def key(self, member: str) -> Ed25519PublicKey | None:
        return self._keys.get(member)

    def __contains__(self, member: str) -> bool:
        return member in self._keys


def _key_id(signature_input: str) -> str | None:
    marker = 'keyid="'
    start = signature_input.find(marker)
    if start < 0:
        return None
    start += len(marker)
    return signature_input[start : signature_input.find('"', start)]


def authenticate_request(trust: TrustStore, verifier, method: str, path: str, headers, body: bytes) -> str:
    """The verified signer of a request; learns its certificate from the request when first seen."""
    key_id = _key_id(headers.get("signature-input", ""))
    if key_id and key_id not in trust and CERTIFICATE_HEADER in headers:
        try:
            if trust.add_pem(base64.b64decode(headers[CERTIFICATE_HEADER])) != key_id:
                raise SignatureError("unknown-key", "the certificate is not the signer's")
        except (UntrustedCertificate, ValueError) as exc:
            raise SignatureError("unknown-key", str(exc)) from None
    return verifier.verify_request(method, path, headers, body)


def certificate_header(pem: str) -> str:
    return base64.b64encode(pem.encode()).decode()
