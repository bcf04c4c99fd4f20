"""Consents and prior intents on a real store: signed, versioned, revocable only by the person, checked by the hub."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import update

from publicmesh.consent import (
    ACTIVE,
    EXPIRED,
    REVOKED,
    SUPERSEDED,
    Consent,
    PriorIntent,
    Purpose,
    amend_consent,
    check_consent,
    consents_of,
    ensure_schema,
    expire_consents,
    get_consent,
    give_consent,
    has_prior_intent,
    history,
    prior_intents_of,
    record_prior_intent,
    revoke_consent,
    revoke_prior_intent,
)
from publicmesh.consent.schema import consents

pytestmark = pytest.mark.storage

ALICE = "A" * 21 + "x"
BOB = "B" * 21 + "y"
FINTECH = "COM/1234567890123/fintech-app"
LOAN = Purpose("loan-screening", "住宅ローンの審査", "Mortgage screening")
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def store_name():
    return "consent"


@pytest.fixture
def engine(engine):
    """A fresh consent store on each backend (the root conftest's engine) with its tables."""
    return ensure_schema(engine)


class Wallet:
    """The person's signing key, as the smartphone wallet would hold it."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data)

    def verify(self, data: bytes, signature: bytes) -> bool:
        try:
            self.key.public_key().verify(signature, data)
            return True
        except InvalidSignature:
            return False


@pytest.fixture
def alice():
    return Wallet()


def give(engine, wallet, **kw) -> Consent:
    kw.setdefault("valid_until", T0 + timedelta(days=30))
    return give_consent(
        engine, ALICE, FINTECH, ["national-tax/income", "pension/benefits"], LOAN, sign=wallet.sign, now=T0, **kw
    )


def test_given_consent_allows_exactly_what_it_names(engine, alice):
    consent = give(engine, alice)
    assert consent.status == ACTIVE and consent.version == 1 and len(consent.id) == 22
    at = T0 + timedelta(days=1)
    found = check_consent(engine, consent.id, FINTECH, "national-tax/income", "loan-screening", at, verify=alice.verify)
    assert found == consent
    assert check_consent(engine, consent.id, FINTECH, "pension/benefits", LOAN, at, verify=alice.verify)
    refused = [
        ("COM/9999999999999/other-app", "national-tax/income", "loan-screening"),  # another recipient
        (FINTECH, "national-tax/assets", "loan-screening"),  # a dataset not consented
        (FINTECH, "national-tax/income", "marketing"),  # another purpose
    ]
    for recipient, dataset, purpose in refused:
        assert check_consent(engine, consent.id, recipient, dataset, purpose, at, verify=alice.verify) is None
    assert (
        check_consent(
            engine, "no-such-consent", FINTECH, "national-tax/income", "loan-screening", at, verify=alice.verify
        )
        is None
    )


def test_validity_window_and_expiry(engine, alice):
    consent = give(engine, alice, valid_from=T0 + timedelta(days=1))

    def check(at):
        return check_consent(
            engine, consent.id, FINTECH, "national-tax/income", "loan-screening", at, verify=alice.verify
        )

    assert check(T0) is None  # not yet valid
    assert check(T0 + timedelta(days=2)) is not None
    assert check(T0 + timedelta(days=30)) is None  # valid_until is exclusive
    later = T0 + timedelta(days=31)
    assert consents_of(engine, ALICE, now=later) == []
    assert [c.status for c in consents_of(engine, ALICE, include_ended=True, now=later)] == [EXPIRED]
    assert expire_consents(engine, now=later) == 1
    assert get_consent(engine, consent.id).status == EXPIRED
    with pytest.raises(ValueError):
        give(engine, alice, valid_until=T0 - timedelta(days=1))


def test_tampered_record_or_wrong_key_is_refused(engine, alice):
    consent = give(engine, alice)
    at = T0 + timedelta(hours=1)
    args = (engine, consent.id, FINTECH, "national-tax/income", "loan-screening", at)
    assert check_consent(*args, verify=Wallet().verify) is None  # someone else's key
    with engine.begin() as conn:  # an insider widens the consent in the database
        conn.execute(
            update(consents)
            .where(consents.c.id == consent.id)
            .values(datasets='["national-tax/assets","national-tax/income","pension/benefits"]')
        )
    assert check_consent(*args, verify=alice.verify) is None
    assert (
        check_consent(engine, consent.id, FINTECH, "national-tax/assets", "loan-screening", at, verify=alice.verify)
        is None
    )

    def broken(_data, _signature):
        raise ValueError("garbage")

    assert check_consent(*args, verify=broken) is None


def test_only_the_person_revokes(engine, alice):
    consent = give(engine, alice)
    with pytest.raises(PermissionError):
        revoke_consent(engine, consent.id, BOB)
    with pytest.raises(LookupError):
        revoke_consent(engine, "nope", ALICE)
    revoked = revoke_consent(engine, consent.id, ALICE, now=T0 + timedelta(hours=2))
    assert revoked.status == REVOKED and revoked.revoked_at == T0 + timedelta(hours=2)
    assert revoke_consent(engine, consent.id, ALICE).revoked_at == revoked.revoked_at  # idempotent
    assert (
        check_consent(
            engine,
            consent.id,
            FINTECH,
            "national-tax/income",
            "loan-screening",
            T0 + timedelta(hours=3),
            verify=alice.verify,
        )
        is None
    )
    assert consents_of(engine, ALICE, now=T0) == []
    with pytest.raises(ValueError):
        amend_consent(engine, consent.id, ALICE, sign=alice.sign, datasets=["pension/benefits"])


def test_amendment_is_a_new_signed_version_and_keeps_history(engine, alice):
    first = give(engine, alice)
    with pytest.raises(PermissionError):
        amend_consent(engine, first.id, BOB, sign=alice.sign, datasets=["pension/benefits"])
    later = T0 + timedelta(days=1)
    second = amend_consent(engine, first.id, ALICE, sign=alice.sign, datasets=["pension/benefits"], now=later)
    assert (second.id, second.version, second.datasets) == (first.id, 2, ("pension/benefits",))
    assert second.recipient == FINTECH and second.valid_until == first.valid_until
    assert alice.verify(second.content(), second.signature)
    at = later + timedelta(hours=1)
    assert (
        check_consent(engine, first.id, FINTECH, "pension/benefits", "loan-screening", at, verify=alice.verify)
        == second
    )
    assert (
        check_consent(engine, first.id, FINTECH, "national-tax/income", "loan-screening", at, verify=alice.verify)
        is None
    )  # narrowed away
    versions = [r for r in history(engine, ALICE, now=later) if isinstance(r, Consent)]
    assert [(c.version, c.status) for c in versions] == [(1, SUPERSEDED), (2, ACTIVE)]
    assert versions[0].superseded_at == later and versions[0].datasets == first.datasets
    assert consents_of(engine, ALICE, now=later) == [second]


def test_bad_input_is_refused(engine, alice):
    with pytest.raises(ValueError):
        give_consent(engine, "short", FINTECH, ["national-tax/income"], LOAN, sign=alice.sign)
    with pytest.raises(ValueError):
        give_consent(engine, ALICE, "fintech-app", ["national-tax/income"], LOAN, sign=alice.sign)
    with pytest.raises(ValueError):
        give_consent(engine, ALICE, FINTECH, ["income"], LOAN, sign=alice.sign)
    with pytest.raises(ValueError):
        give_consent(engine, ALICE, FINTECH, [], LOAN, sign=alice.sign)
    with pytest.raises(ValueError):
        Purpose("loan", "", "Loan")


def test_prior_intents(engine, alice):
    assert not has_prior_intent(engine, ALICE, "auto-pay-eligible-benefits", "child-allowance")
    intent = record_prior_intent(
        engine, ALICE, "auto-pay-eligible-benefits", ["child-allowance"], sign=alice.sign, now=T0
    )
    assert isinstance(intent, PriorIntent) and intent.version == 1
    assert has_prior_intent(engine, ALICE, "auto-pay-eligible-benefits", "child-allowance", verify=alice.verify)
    assert not has_prior_intent(engine, ALICE, "auto-pay-eligible-benefits", "disaster-relief")
    assert not has_prior_intent(engine, ALICE, "push-notices", "child-allowance")
    assert not has_prior_intent(engine, BOB, "auto-pay-eligible-benefits", "child-allowance")
    assert not has_prior_intent(engine, ALICE, "auto-pay-eligible-benefits", "child-allowance", verify=Wallet().verify)

    wider = record_prior_intent(
        engine,
        ALICE,
        "auto-pay-eligible-benefits",
        ["*", "child-allowance"],
        sign=alice.sign,
        now=T0 + timedelta(minutes=1),
    )
    assert (wider.id, wider.version, wider.scope) == (intent.id, 2, ("*",))
    assert has_prior_intent(engine, ALICE, "auto-pay-eligible-benefits", "disaster-relief", verify=alice.verify)
    record_prior_intent(engine, ALICE, "push-notices", sign=alice.sign, now=T0 + timedelta(minutes=2))
    assert [i.kind for i in prior_intents_of(engine, ALICE)] == ["auto-pay-eligible-benefits", "push-notices"]

    with pytest.raises(PermissionError):
        revoke_prior_intent(engine, intent.id, BOB)
    revoked = revoke_prior_intent(engine, intent.id, ALICE, now=T0 + timedelta(minutes=3))
    assert revoked.status == REVOKED
    assert not has_prior_intent(engine, ALICE, "auto-pay-eligible-benefits", "disaster-relief")
    kinds = [(type(r).__name__, r.version, r.status) for r in history(engine, ALICE)]
    assert kinds == [("PriorIntent", 1, SUPERSEDED), ("PriorIntent", 2, REVOKED), ("PriorIntent", 1, ACTIVE)]
    with pytest.raises(ValueError):
        record_prior_intent(engine, ALICE, "sell-my-data", sign=alice.sign)
