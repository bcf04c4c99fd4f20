"""The My Number card's JPKI applet in software (マイナンバーカード): two key slots behind PINs with retry counters."""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Connection, Engine, select, update

from publicmesh.identity import store
from publicmesh.identity.certificates import AUTH, SIGNING, certificate_pem, new_key
from publicmesh.identity.errors import CardError, CardLocked, WrongPin
from publicmesh.identity.keys import derive_key, load_or_create_secret, seal, unseal

MASTER_FILE = "jpki-cards.key"
AUTH_TRIES = 3  # 利用者証明用電子証明書の暗証番号 (4 digits)
SIGNING_TRIES = 5  # 署名用電子証明書の暗証番号 (6–16 characters)
_AUTH_PIN = re.compile(r"^[0-9]{4}$")
_SIGNING_PASSWORD = re.compile(r"^(?=.*[A-Z])(?=.*[0-9])[A-Z0-9]{6,16}$")
_SLOTS = {
    AUTH: ("auth_key", "auth_pin", "auth_failures", AUTH_TRIES),
    SIGNING: ("signing_key", "signing_pin", "signing_failures", SIGNING_TRIES),
}

# Called inside the card's transaction, so a card and its certificates are stored together or not at all.
Certify = Callable[[str, str, ec.EllipticCurvePublicKey, Connection], x509.Certificate]


def check_auth_pin(pin: str) -> str:
    if not isinstance(pin, str) or not _AUTH_PIN.match(pin):
        raise CardError("the auth PIN is 4 digits", reason="bad-pin-format")
    return pin


def check_signing_password(password: str) -> str:
    """JPKI's rule: 6 to 16 characters of A–Z and 0–9, with at least one of each."""
    if not isinstance(password, str) or not _SIGNING_PASSWORD.match(password):
        raise CardError("the signing password is 6–16 uppercase letters and digits, with both", reason="bad-pin-format")
    return password


@dataclass(frozen=True)
class CardStatus:
    card_id: str
    person_ref: str
    active: bool
    auth_tries_left: int
    signing_tries_left: int

    @property
    def auth_locked(self) -> bool:
        return self.auth_tries_left == 0

    @property
    def signing_locked(self) -> bool:
        return self.signing_tries_left == 0


class CardStore:
    """Cards kept in the identity store; private keys sealed under per-card keys derived from a master secret."""

    def __init__(self, engine: Engine, master_secret: bytes):
        self.engine, self._master = engine, master_secret

    @classmethod
    def open(cls, engine: Engine, keys_dir: Path) -> CardStore:
        store.create_all(engine)
        return cls(engine, load_or_create_secret(keys_dir, MASTER_FILE))

    def create(self, person_ref: str, auth_pin: str, signing_password: str, certify: Certify) -> SoftwareCard:
        """A new card (交付): keys generated on it, certified through ``certify(card_id, kind, public_key, conn)``."""
        check_auth_pin(auth_pin)
        check_signing_password(signing_password)
        card_id = secrets.token_hex(16)
        auth_key, signing_key = new_key(), new_key()
        with self.engine.begin() as conn:
            store.ensure_person(conn, person_ref)
            auth_cert = certify(card_id, AUTH, auth_key.public_key(), conn)
            signing_cert = certify(card_id, SIGNING, signing_key.public_key(), conn)
            conn.execute(
                store.cards.insert().values(
                    card_id=card_id,
                    person_ref=person_ref,
                    status="active",
                    auth_key=self._seal(card_id, AUTH, auth_key),
                    signing_key=self._seal(card_id, SIGNING, signing_key),
                    auth_pin=self._verifier(card_id, AUTH, auth_pin),
                    signing_pin=self._verifier(card_id, SIGNING, signing_password),
                    auth_failures=0,
                    signing_failures=0,
                    auth_certificate=certificate_pem(auth_cert),
                    signing_certificate=certificate_pem(signing_cert),
                    created_at=store.utc_now(),
                )
            )
        return SoftwareCard(self, card_id, person_ref)

    def card(self, card_id: str) -> SoftwareCard:
        with self.engine.connect() as conn:
            person_ref = conn.execute(select(store.cards.c.person_ref).where(store.cards.c.card_id == card_id)).scalar()
        if person_ref is None:
            raise CardError(f"no card {card_id}", reason="unknown-card")
        return SoftwareCard(self, card_id, person_ref)

    def cards_of(self, person_ref: str) -> list[SoftwareCard]:
        """The person's active cards."""
        with self.engine.connect() as conn:
            ids = (
                conn.execute(
                    select(store.cards.c.card_id).where(
                        store.cards.c.person_ref == person_ref, store.cards.c.status == "active"
                    )
                )
                .scalars()
                .all()
            )
        return [SoftwareCard(self, card_id, person_ref) for card_id in ids]

    def unlock(self, card_id: str, *, auth_pin: str | None = None, signing_password: str | None = None) -> None:
        """The municipal counter (窓口) resets a slot's counter by setting a new PIN for it."""
        if auth_pin is None and signing_password is None:
            raise ValueError("unlocking sets a new auth PIN, a new signing password, or both")
        values: dict[str, Any] = {}
        if auth_pin is not None:
            values.update(auth_pin=self._verifier(card_id, AUTH, check_auth_pin(auth_pin)), auth_failures=0)
        if signing_password is not None:
            values.update(
                signing_pin=self._verifier(card_id, SIGNING, check_signing_password(signing_password)),
                signing_failures=0,
            )
        with self.engine.begin() as conn:
            if not conn.execute(update(store.cards).where(store.cards.c.card_id == card_id).values(**values)).rowcount:
                raise CardError(f"no card {card_id}", reason="unknown-card")

    def retire(self, card_id: str) -> None:
        """The card is returned or replaced; it no longer signs (its certificates are revoked by the authority)."""
        with self.engine.begin() as conn:
            conn.execute(update(store.cards).where(store.cards.c.card_id == card_id).values(status="retired"))

    def _card_key(self, card_id: str, use: str) -> bytes:
        return derive_key(self._master, f"jpki-card:{use}:{card_id}")

    def _seal(self, card_id: str, slot: str, key: ec.EllipticCurvePrivateKey) -> bytes:
        der = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return seal(self._card_key(card_id, "seal"), der, f"{card_id}:{slot}")

    def _unseal(self, card_id: str, slot: str, sealed: bytes) -> ec.EllipticCurvePrivateKey:
        der = unseal(self._card_key(card_id, "seal"), sealed, f"{card_id}:{slot}")
        return serialization.load_der_private_key(der, None)  # type: ignore[return-value]

    def _verifier(self, card_id: str, slot: str, pin: str) -> bytes:
        # Keyed: the store alone does not let anyone try the 10,000 auth PINs offline.
        return hmac.digest(self._card_key(card_id, "pin"), f"{slot}:{pin}".encode(), "sha256")


class SoftwareCard:
    """What a card reader talks to: sign with a slot's key after its PIN, and read the certificates."""

    def __init__(self, cards: CardStore, card_id: str, person_ref: str):
        self.cards, self.card_id, self.person_ref = cards, card_id, person_ref

    def sign_auth(self, challenge: bytes, pin: str) -> bytes:
        """ECDSA P-256/SHA-256 (DER) over a login challenge, after the 4-digit auth PIN."""
        return self._sign(AUTH, challenge, check_auth_pin(pin))

    def sign_document(self, data: bytes, pin: str) -> bytes:
        """ECDSA P-256/SHA-256 (DER) over a document, after the signing password."""
        return self._sign(SIGNING, data, check_signing_password(pin))

    def auth_certificate_pem(self) -> str:
        return self._column("auth_certificate")

    def signing_certificate_pem(self) -> str:
        return self._column("signing_certificate")

    def status(self) -> CardStatus:
        with self.cards.engine.connect() as conn:
            row = conn.execute(select(store.cards).where(store.cards.c.card_id == self.card_id)).one()
        return CardStatus(
            self.card_id,
            row.person_ref,
            row.status == "active",
            AUTH_TRIES - row.auth_failures,
            SIGNING_TRIES - row.signing_failures,
        )

    def rekey_signing(
        self,
        certify: Callable[[ec.EllipticCurvePublicKey, Connection], x509.Certificate],
        *,
        signing_password: str | None = None,
    ) -> x509.Certificate:
        """Replace the signing key and certificate (再発行), optionally with a new signing password."""
        key = new_key()
        values: dict[str, Any] = dict(signing_key=self.cards._seal(self.card_id, SIGNING, key))
        if signing_password is not None:
            values.update(
                signing_pin=self.cards._verifier(self.card_id, SIGNING, check_signing_password(signing_password)),
                signing_failures=0,
            )
        with self.cards.engine.begin() as conn:
            certificate = certify(key.public_key(), conn)
            values["signing_certificate"] = certificate_pem(certificate)
            conn.execute(update(store.cards).where(store.cards.c.card_id == self.card_id).values(**values))
        return certificate

    def _sign(self, slot: str, data: bytes, pin: str) -> bytes:
        key_column, pin_column, failures_column, limit = _SLOTS[slot]
        table = store.cards
        refusal: CardError | None = None
        with self.cards.engine.begin() as conn:
            # Count the try before checking the PIN, as a card does: no way to test a PIN without spending a try.
            spent = conn.execute(
                update(table)
                .where(table.c.card_id == self.card_id, table.c.status == "active", table.c[failures_column] < limit)
                .values({failures_column: table.c[failures_column] + 1})
            ).rowcount
            row = conn.execute(select(table).where(table.c.card_id == self.card_id)).first()
            if row is None:
                refusal = CardError(f"no card {self.card_id}", reason="unknown-card")
            elif not spent:
                refusal = (
                    CardError("the card is no longer in use", reason="card-retired")
                    if row.status != "active"
                    else CardLocked(f"the {slot} PIN is locked; the municipal office can reset it")
                )
            elif not hmac.compare_digest(row._mapping[pin_column], self.cards._verifier(self.card_id, slot, pin)):
                left = limit - row._mapping[failures_column]
                refusal = (
                    CardLocked(f"wrong {slot} PIN; the slot is now locked")
                    if left == 0
                    else WrongPin(f"wrong {slot} PIN", tries_left=left)
                )
            else:
                conn.execute(update(table).where(table.c.card_id == self.card_id).values({failures_column: 0}))
        # Raised after the commit: a wrong PIN must stay counted.
        if refusal is not None:
            raise refusal
        return self.cards._unseal(self.card_id, slot, row._mapping[key_column]).sign(data, ec.ECDSA(hashes.SHA256()))

    def _column(self, name: str) -> str:
        with self.cards.engine.connect() as conn:
            return conn.execute(select(store.cards.c[name]).where(store.cards.c.card_id == self.card_id)).scalar_one()
