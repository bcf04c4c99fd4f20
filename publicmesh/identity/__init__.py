"""Resident identity (公的個人認証): JPKI-style PKI, cards, wallet, logins and proxy mandates.

Staff accounts of municipal offices belong to the staff console (``publicmesh.console.staff``).
"""

from publicmesh.identity.bootstrap import Identity, open_identity
from publicmesh.identity.card import AUTH_TRIES, SIGNING_TRIES, CardStatus, CardStore, SoftwareCard
from publicmesh.identity.certificates import (
    AUTH,
    SIGNING,
    WALLET,
    BasicInformation,
    basic_information,
    certificate_pem,
    kind_of,
    load_certificate,
)
from publicmesh.identity.errors import (
    CardError,
    CardLocked,
    CertificateRevoked,
    IdentityError,
    LoginError,
    UntrustedCertificate,
    WrongPin,
)
from publicmesh.identity.login import CHALLENGE_TTL, Challenge, ResidentLogin
from publicmesh.identity.mandates import SCOPES, Mandate, Mandates, check_statutory, self_mandate
from publicmesh.identity.pki import CertificateRecord, JpkiAuthority
from publicmesh.identity.provisioning import (
    DEMO_AUTH_PIN,
    DEMO_SIGNING_PASSWORD,
    DemoCard,
    issue_card,
    issue_demo_cards,
)
from publicmesh.identity.store import create_all
from publicmesh.identity.wallet import WalletDevice, Wallets

__all__ = [
    "AUTH",
    "AUTH_TRIES",
    "CHALLENGE_TTL",
    "DEMO_AUTH_PIN",
    "DEMO_SIGNING_PASSWORD",
    "SCOPES",
    "SIGNING",
    "SIGNING_TRIES",
    "WALLET",
    "BasicInformation",
    "CardError",
    "CardLocked",
    "CardStatus",
    "CardStore",
    "CertificateRecord",
    "CertificateRevoked",
    "Challenge",
    "DemoCard",
    "Identity",
    "IdentityError",
    "JpkiAuthority",
    "LoginError",
    "Mandate",
    "Mandates",
    "ResidentLogin",
    "SoftwareCard",
    "UntrustedCertificate",
    "WalletDevice",
    "Wallets",
    "WrongPin",
    "basic_information",
    "certificate_pem",
    "check_statutory",
    "create_all",
    "issue_card",
    "issue_demo_cards",
    "kind_of",
    "load_certificate",
    "open_identity",
    "self_mandate",
]
