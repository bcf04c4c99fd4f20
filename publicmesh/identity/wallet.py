"""The smartphone wallet (スマホ用電子証明書): a WebCrypto P-256 key certified after a card login."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from sqlalchemy import Engine, select, update

from publicmesh.identity import store
from publicmesh.identity.certificates import AUTH, WALLET, certificate_pem, check_public_key
from publicmesh.identity.errors import IdentityError
from publicmesh.identity.pki import JpkiAuthority

MAX_DEVICES = 5
MAX_NAME = 64


@dataclass(frozen=True)
class WalletDevice:
    device_id: str
    person_ref: str
    device_name: str
    serial: str
    enrolled_at: dt.datetime
    revoked_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class Wallets:
    """Enrolment, listing and revocation of a person's wallet devices."""

    def __init__(self, engine: Engine, authority: JpkiAuthority):
        self.engine, self.authority = engine, authority

    def enrol_wallet(self, person_ref: str, device_name: str, public_key_spki_der: bytes) -> str:
        """Certify a device's public key (SPKI DER from WebCrypto ``exportKey("spki")``); returns the certificate PEM.

        Call only right after the person logged in with their card: the wallet inherits that assurance, and
        its certificate expires with the card's auth certificate.
        """
        device_name = device_name.strip()
        if not device_name or len(device_name) > MAX_NAME:
            raise ValueError(f"a device name is 1 to {MAX_NAME} characters")
        try:
            public_key = check_public_key(serialization.load_der_public_key(public_key_spki_der))
        except ValueError as exc:
            raise IdentityError(f"not a P-256 public key: {exc}", reason="bad-key") from None
        auth = self.authority.certificates_of(person_ref, AUTH)
        if not auth:
            raise IdentityError("the person has no valid card auth certificate", reason="no-card")
        if len(self.list_wallets(person_ref)) >= MAX_DEVICES:
            raise IdentityError(f"at most {MAX_DEVICES} wallets per person", reason="too-many-wallets")
        device_id = secrets.token_hex(16)
        with self.engine.begin() as conn:
            certificate = self.authority.issue(
                public_key, WALLET, person_ref, device_id=device_id, not_after=max(r.not_after for r in auth), conn=conn
            )
            conn.execute(
                store.wallet_devices.insert().values(
                    device_id=device_id,
                    person_ref=person_ref,
                    device_name=device_name,
                    serial=format(certificate.serial_number, "x"),
                    enrolled_at=store.utc_now(),
                )
            )
        return certificate_pem(certificate)

    def list_wallets(self, person_ref: str, *, include_revoked: bool = False) -> list[WalletDevice]:
        table = store.wallet_devices
        query = select(table).where(table.c.person_ref == person_ref).order_by(table.c.enrolled_at)
        if not include_revoked:
            query = query.where(table.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [WalletDevice(**row._mapping) for row in conn.execute(query)]

    def revoke_wallet(self, person_ref: str, device_id: str) -> None:
        """The person retires one of their own devices; its certificate is revoked at once."""
        table = store.wallet_devices
        with self.engine.begin() as conn:
            row = conn.execute(select(table.c.person_ref, table.c.serial).where(table.c.device_id == device_id)).first()
            if row is None:
                raise IdentityError(f"no wallet device {device_id}", reason="unknown-device")
            if row.person_ref != person_ref:
                raise PermissionError("a wallet can be revoked only by its holder")
            conn.execute(
                update(table)
                .where(table.c.device_id == device_id, table.c.revoked_at.is_(None))
                .values(revoked_at=store.utc_now())
            )
            self.authority.revoke(row.serial, "cessation_of_operation", conn=conn)
