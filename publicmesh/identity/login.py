"""Resident login (利用者証明): a single-use challenge signed with the card's auth key or a wallet key."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from sqlalchemy import Engine, delete, select, update

from publicmesh.identity import store
from publicmesh.identity.certificates import AUTH, WALLET, kind_of, load_certificate
from publicmesh.identity.errors import LoginError, UntrustedCertificate
from publicmesh.identity.pki import JpkiAuthority

CHALLENGE_TTL = dt.timedelta(minutes=2)
NONCE_BYTES = 32
_P1363_LENGTH = 64  # P-256: r and s, 32 bytes each


@dataclass(frozen=True)
class Challenge:
    """A nonce the resident's card or wallet signs; valid once, for two minutes."""

    id: str
    nonce: bytes
    expires_at: dt.datetime


def signature_der(signature: bytes, *, p1363: bool) -> bytes:
    """A P-256 ECDSA signature as DER, from DER (cards) or IEEE P1363 r||s (WebCrypto wallets)."""
    if p1363:
        if len(signature) != _P1363_LENGTH:
            raise ValueError("a WebCrypto P-256 signature is 64 bytes (r||s)")
        return encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        r, s = decode_dss_signature(signature)
    except ValueError:
        if len(signature) == _P1363_LENGTH:  # a card middleware that hands back raw r||s
            return signature_der(signature, p1363=True)
        raise
    if encode_dss_signature(r, s) != signature:
        raise ValueError("the DER signature is not canonical")
    return signature


class ResidentLogin:
    """Challenges in the identity store, and their verification against the JPKI authority's register."""

    def __init__(self, engine: Engine, authority: JpkiAuthority):
        self.engine, self.authority = engine, authority

    def new_challenge(self) -> Challenge:
        challenge = Challenge(secrets.token_hex(16), secrets.token_bytes(NONCE_BYTES), store.utc_now() + CHALLENGE_TTL)
        with self.engine.begin() as conn:
            conn.execute(
                store.challenges.insert().values(
                    challenge_id=challenge.id, nonce=challenge.nonce, expires_at=challenge.expires_at
                )
            )
        return challenge

    def verify_login(self, challenge_id: str, certificate_pem: str, signature: bytes) -> str:
        """The person_ref that signed the challenge; raises LoginError with a reason code otherwise."""
        nonce = self._consume(challenge_id)
        try:
            certificate = load_certificate(certificate_pem)
        except ValueError:
            raise LoginError("the certificate cannot be read", reason="untrusted") from None
        try:
            self.authority.check_issued(certificate)
        except UntrustedCertificate as exc:
            raise LoginError(str(exc), reason="untrusted") from None
        record = self.authority.record(certificate.serial_number)
        if record is None:
            raise LoginError("the certificate is not in the issuance register", reason="unknown-card")
        if record.kind not in (AUTH, WALLET) or kind_of(certificate) != record.kind:
            # A signing certificate carries personal data and is never a login credential.
            raise LoginError("not an authentication certificate", reason="untrusted")
        if record.status != "good":
            raise LoginError(f"the certificate was revoked ({record.reason})", reason="revoked")
        try:
            der = signature_der(signature, p1363=record.kind == WALLET)
            certificate.public_key().verify(der, nonce, ec.ECDSA(hashes.SHA256()))
        except (ValueError, InvalidSignature):
            raise LoginError("the signature does not verify", reason="bad-signature") from None
        return record.person_ref

    def purge_expired(self, before: dt.datetime | None = None) -> int:
        """Delete challenges that expired before ``before`` (now); returns how many."""
        with self.engine.begin() as conn:
            return conn.execute(
                delete(store.challenges).where(store.challenges.c.expires_at < (before or store.utc_now()))
            ).rowcount

    def _consume(self, challenge_id: str) -> bytes:
        table = store.challenges
        now = store.utc_now()
        with self.engine.begin() as conn:
            query = select(table.c.nonce, table.c.expires_at).where(table.c.challenge_id == challenge_id)
            row = conn.execute(query).first()
            fresh_use = (
                row is not None
                and conn.execute(
                    update(table)
                    .where(table.c.challenge_id == challenge_id, table.c.used_at.is_(None))
                    .values(used_at=now)
                ).rowcount
                == 1
            )
        # An unknown id is treated as expired: expired challenges are purged, so the two look alike.
        if row is None:
            raise LoginError("no such challenge", reason="expired-challenge")
        if not fresh_use:
            raise LoginError("the challenge was already used", reason="replayed-challenge")
        if row.expires_at < now:
            raise LoginError("the challenge expired", reason="expired-challenge")
        return row.nonce
