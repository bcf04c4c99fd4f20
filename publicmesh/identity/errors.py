"""Errors of the identity domain, each with a stable reason code the portal can map to a message."""

from __future__ import annotations


class IdentityError(Exception):
    """A certificate, card, login or account operation refused, with a stable ``reason`` code."""

    default_reason = "identity-error"

    def __init__(self, message: str = "", reason: str | None = None):
        self.reason = reason or self.default_reason
        super().__init__(message or self.reason)


class UntrustedCertificate(IdentityError):
    """A certificate this JPKI authority did not issue, or that is not valid now."""

    default_reason = "untrusted"


class CertificateRevoked(IdentityError):
    """A certificate that the authority has revoked (失効)."""

    default_reason = "revoked"


class LoginError(IdentityError):
    """A resident login refused; ``reason`` is one of ``LOGIN_REASONS``."""

    default_reason = "bad-signature"


LOGIN_REASONS = ("expired-challenge", "replayed-challenge", "revoked", "bad-signature", "untrusted", "unknown-card")


class CardError(IdentityError):
    """A card operation refused (wrong PIN, bad PIN format, unknown card)."""

    default_reason = "card-error"


class WrongPin(CardError):
    """A wrong PIN or password; ``tries_left`` says how many remain before the card slot locks."""

    default_reason = "wrong-pin"

    def __init__(self, message: str, tries_left: int):
        self.tries_left = tries_left
        super().__init__(message)


class CardLocked(CardError):
    """A card slot locked after too many wrong PINs (暗証番号ロック); only the municipal counter unlocks it."""

    default_reason = "card-locked"
