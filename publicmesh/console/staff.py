"""Staff accounts (職員): scrypt passwords, TOTP second factor, roles per municipality, and national operators.

The accounts live in the services store, next to the applications the console decides: the console is the staff
face of the services SaaS, so it opens that one store and no other part's (the identity store holds residents).
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import struct
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from publicmesh.identity.keys import derive_key, load_or_create_secret, seal, unseal
from publicmesh.services.store import utc_now
from publicmesh.storage import schema_once

MASTER_FILE = "staff-totp.key"
MUNICIPAL_ROLES = frozenset({"reviewer", "approver"})
NATIONAL_ROLES = frozenset({"operator"})  # publishes services for the whole country; sees no municipality's cases
ROLES = MUNICIPAL_ROLES | NATIONAL_ROLES
NATIONAL = ""  # the municipality column of a national account
MAX_FAILURES = 10
MIN_PASSWORD = 12
TOTP_STEP, TOTP_DIGITS, TOTP_WINDOW = 30, 6, 1  # RFC 6238 defaults; accept one step of clock drift each way
_SCRYPT = dict(n=2**14, r=8, p=1)
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
_WEIGHTS = (6, 5, 4, 3, 2)

metadata = MetaData()

staff_accounts = Table(
    "console_staff_accounts",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("municipality", String(6), nullable=False),  # NATIONAL ('') for an operator
    Column("roles", Text, nullable=False),  # comma-separated, sorted
    Column("password_hash", Text, nullable=False),
    Column("totp_secret", LargeBinary, nullable=False),  # sealed under the console's master secret
    Column("totp_last_step", BigInteger, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_console_staff_municipality", "municipality"),
)

ensure_schema = schema_once(metadata)


class StaffError(Exception):
    """A staff account operation refused, with a stable ``reason`` code."""

    default_reason = "staff-error"

    def __init__(self, message: str = "", reason: str | None = None):
        self.reason = reason or self.default_reason
        super().__init__(message or self.reason)


class StaffLoginError(StaffError):
    """A staff login refused: ``bad-credentials`` or ``locked``."""

    default_reason = "bad-credentials"


def hotp(secret: bytes, counter: int, digits: int = TOTP_DIGITS, digest: str = "sha1") -> str:
    """RFC 4226 HOTP."""
    mac = hmac.digest(secret, struct.pack(">Q", counter), digest)
    offset = mac[-1] & 0x0F
    code = (int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF) % 10**digits
    return str(code).zfill(digits)


def totp(secret: bytes, at: float, digits: int = TOTP_DIGITS, digest: str = "sha1", step: int = TOTP_STEP) -> str:
    """RFC 6238 TOTP at Unix time ``at``."""
    return hotp(secret, int(at) // step, digits, digest)


def provisioning_uri(username: str, secret_base32: str, issuer: str = "Public Service Mesh") -> str:
    """The ``otpauth://`` URI an authenticator app scans as a QR code."""
    label = quote(f"{issuer}:{username}")
    return f"otpauth://totp/{label}?secret={secret_base32}&issuer={quote(issuer)}&algorithm=SHA1&digits=6&period=30"


def check_municipality(code: str) -> str:
    """A 6-digit 全国地方公共団体コード whose last digit is its check digit ((11 − Σ dᵢwᵢ mod 11) mod 10)."""
    if not isinstance(code, str) or len(code) != 6 or not code.isascii() or not code.isdigit():
        raise ValueError(f"a municipality code has 6 digits, got {code!r}")
    if str((11 - sum(int(d) * w for d, w in zip(code, _WEIGHTS, strict=False)) % 11) % 10) != code[5]:
        raise ValueError(f"{code} fails its check digit")
    return code


def check_roles(municipality: str | None, roles: set[str] | frozenset[str]) -> None:
    """Municipal roles (reviewer, approver) belong to one municipality; the national role (operator) to none."""
    if not roles or not set(roles) <= ROLES:
        raise ValueError(f"roles are a non-empty subset of {sorted(ROLES)}")
    if set(roles) & NATIONAL_ROLES:
        if municipality or set(roles) - NATIONAL_ROLES:
            raise ValueError("an operator is national: no municipality and no municipal role")
    else:
        check_municipality(municipality or "")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    derived = Scrypt(salt=salt, length=32, **_SCRYPT).derive(password.encode())
    return "scrypt${n}${r}${p}$".format(**_SCRYPT) + _b64(salt) + "$" + _b64(derived)


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time check of a password against ``hash_password``'s output."""
    _, n, r, p, salt, derived = encoded.split("$")
    try:
        Scrypt(salt=_unb64(salt), length=32, n=int(n), r=int(r), p=int(p)).verify(password.encode(), _unb64(derived))
    except InvalidKey:
        return False
    return True


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class StaffPrincipal:
    """A logged-in staff member: sees only their own municipality's tenant (a national operator sees none)."""

    username: str
    municipality: str
    roles: frozenset[str]

    def can_see(self, municipality_code: str) -> bool:
        return self.municipality != NATIONAL and municipality_code == self.municipality

    def has_role(self, role: str) -> bool:
        return role in self.roles


class StaffDirectory:
    """Staff accounts in the services store; TOTP secrets sealed under a master secret in the keys folder."""

    def __init__(self, engine: Engine, master_secret: bytes):
        self.engine, self._key = engine, derive_key(master_secret, "staff-totp")

    @classmethod
    def open(cls, engine: Engine, keys_dir: Path) -> StaffDirectory:
        ensure_schema(engine)
        return cls(engine, load_or_create_secret(keys_dir, MASTER_FILE))

    def create_staff(
        self, municipality: str | None, username: str, password: str, roles: set[str] | frozenset[str]
    ) -> str:
        """A new account; returns its TOTP secret in base32, to show once as a QR code. Municipal roles need a
        municipality; the national operator role has none (``municipality`` None or NATIONAL)."""
        check_roles(municipality, roles)
        if not _USERNAME.match(username):
            raise ValueError("a username is 3–64 characters of a–z, 0–9, '.', '_' and '-'")
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"a staff password has at least {MIN_PASSWORD} characters")
        municipality = municipality or NATIONAL
        secret = secrets.token_bytes(20)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    staff_accounts.insert().values(
                        username=username,
                        municipality=municipality,
                        roles=",".join(sorted(roles)),
                        password_hash=hash_password(password),
                        totp_secret=seal(self._key, secret, username),
                        totp_last_step=-1,
                        failures=0,
                        created_at=utc_now(),
                    )
                )
        except IntegrityError:
            raise StaffError(f"the username {username} is taken", reason="username-taken") from None
        return base64.b32encode(secret).decode().rstrip("=")

    def staff_login(self, username: str, password: str, totp_code: str, *, at: float | None = None) -> StaffPrincipal:
        """The principal, if the password and the current TOTP code are right; locked after 10 failures."""
        table = staff_accounts
        with self.engine.begin() as conn:
            # Count the attempt first; success resets it. A locked account is refused before any check.
            spent = conn.execute(
                update(table)
                .where(table.c.username == username, table.c.failures < MAX_FAILURES)
                .values(failures=table.c.failures + 1)
            ).rowcount
            row = conn.execute(select(table).where(table.c.username == username)).first()
        if row is None:
            verify_password(password, _dummy_hash())  # same cost as for a real account
            raise StaffLoginError("wrong username, password or code")
        if not spent:
            raise StaffLoginError("the account is locked; an administrator can unlock it", reason="locked")
        step = self._matching_step(row.totp_secret, username, totp_code, time.time() if at is None else at)
        if not verify_password(password, row.password_hash) or step is None:
            raise StaffLoginError("wrong username, password or code")
        with self.engine.begin() as conn:
            # A code is good once: refuse a step at or before the last one used.
            fresh = conn.execute(
                update(table)
                .where(table.c.username == username, table.c.totp_last_step < step)
                .values(failures=0, totp_last_step=step)
            ).rowcount
        if not fresh:
            raise StaffLoginError("the code was already used")
        return StaffPrincipal(row.username, row.municipality, frozenset(row.roles.split(",")))

    def unlock(self, username: str) -> bool:
        """An administrator clears the failure count; False if there is no such account."""
        with self.engine.begin() as conn:
            return (
                conn.execute(
                    update(staff_accounts).where(staff_accounts.c.username == username).values(failures=0)
                ).rowcount
                == 1
            )

    def remove(self, username: str) -> bool:
        """Delete an account (a staff member who left); False if there was none."""
        with self.engine.begin() as conn:
            return conn.execute(delete(staff_accounts).where(staff_accounts.c.username == username)).rowcount == 1

    def _matching_step(self, sealed: bytes, username: str, code: str, at: float) -> int | None:
        secret = unseal(self._key, sealed, username)
        now = int(at) // TOTP_STEP
        found = None
        for step in range(now - TOTP_WINDOW, now + TOTP_WINDOW + 1):
            if hmac.compare_digest(hotp(secret, step).encode(), str(code).encode()) and found is None:
                found = step
        return found


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)
