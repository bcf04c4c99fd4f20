"""Staff accounts: scrypt passwords, RFC 6238 TOTP, lockout and municipality scoping; kept in the services store."""

from __future__ import annotations

import base64
import time

import pytest
from sqlalchemy import inspect

from publicmesh.console.staff import (
    MAX_FAILURES,
    StaffDirectory,
    StaffError,
    StaffLoginError,
    StaffPrincipal,
    check_municipality,
    hash_password,
    provisioning_uri,
    totp,
    verify_password,
)

pytestmark = pytest.mark.storage


PASSWORD = "correct horse battery"
KITAMI, CHIYODA = "012084", "131016"

# RFC 6238 appendix B: 8-digit codes; the seed is the ASCII digits repeated to the hash's block of key length.
SEEDS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
VECTORS = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize("at,sha1,sha256,sha512", VECTORS)
def test_rfc6238_vectors(at, sha1, sha256, sha512):
    for digest, expected in (("sha1", sha1), ("sha256", sha256), ("sha512", sha512)):
        assert totp(SEEDS[digest], at, digits=8, digest=digest) == expected


def test_six_digit_codes_are_the_last_six_digits():
    assert totp(SEEDS["sha1"], 59) == "287082"


@pytest.fixture
def store_name():
    return "services"  # the staff accounts live in the services store


@pytest.fixture
def directory(engine, settings):
    return StaffDirectory.open(engine, settings.keys_dir)


def test_the_accounts_live_in_their_own_table_of_the_services_store(directory, engine):
    assert "console_staff_accounts" in inspect(engine).get_table_names()
    assert not any(name.startswith("identity_") for name in inspect(engine).get_table_names())


def secret_of(base32: str) -> bytes:
    return base64.b32decode(base32 + "=" * (-len(base32) % 8))


def test_password_and_totp_log_in(directory):
    secret = secret_of(directory.create_staff(KITAMI, "sato.k", PASSWORD, {"reviewer"}))
    now = time.time()
    principal = directory.staff_login("sato.k", PASSWORD, totp(secret, now), at=now)
    assert principal == StaffPrincipal("sato.k", KITAMI, frozenset({"reviewer"}))
    assert principal.has_role("reviewer") and not principal.has_role("approver")


def test_a_code_from_the_previous_step_is_accepted_once(directory):
    secret = secret_of(directory.create_staff(KITAMI, "sato.k", PASSWORD, {"approver"}))
    now = time.time()
    code = totp(secret, now - 30)
    directory.staff_login("sato.k", PASSWORD, code, at=now)
    with pytest.raises(StaffLoginError):
        directory.staff_login("sato.k", PASSWORD, code, at=now)


def test_wrong_totp_and_wrong_password_are_refused(directory):
    secret = secret_of(directory.create_staff(KITAMI, "sato.k", PASSWORD, {"reviewer"}))
    now = time.time()
    with pytest.raises(StaffLoginError) as refused:
        directory.staff_login("sato.k", PASSWORD, totp(secret, now - 120), at=now)
    assert refused.value.reason == "bad-credentials"
    with pytest.raises(StaffLoginError):
        directory.staff_login("sato.k", PASSWORD + "!", totp(secret, now), at=now)
    with pytest.raises(StaffLoginError):
        directory.staff_login("nobody", PASSWORD, totp(secret, now), at=now)


def test_ten_failures_lock_the_account(directory):
    secret = secret_of(directory.create_staff(KITAMI, "sato.k", PASSWORD, {"reviewer"}))
    for _ in range(MAX_FAILURES):
        with pytest.raises(StaffLoginError) as refused:
            directory.staff_login("sato.k", "wrong password!", "000000")
        assert refused.value.reason == "bad-credentials"
    now = time.time()
    with pytest.raises(StaffLoginError) as refused:
        directory.staff_login("sato.k", PASSWORD, totp(secret, now), at=now)
    assert refused.value.reason == "locked"
    directory.unlock("sato.k")
    directory.staff_login("sato.k", PASSWORD, totp(secret, now), at=now)


def test_success_resets_the_failure_count(directory):
    secret = secret_of(directory.create_staff(KITAMI, "sato.k", PASSWORD, {"reviewer"}))
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(StaffLoginError):
            directory.staff_login("sato.k", "wrong password!", "000000")
    now = time.time()
    directory.staff_login("sato.k", PASSWORD, totp(secret, now - 30), at=now)
    with pytest.raises(StaffLoginError) as refused:
        directory.staff_login("sato.k", "wrong password!", "000000")
    assert refused.value.reason == "bad-credentials"


def test_staff_see_only_their_own_municipality(directory):
    kitami = secret_of(directory.create_staff(KITAMI, "kitami.clerk", PASSWORD, {"reviewer", "approver"}))
    chiyoda = secret_of(directory.create_staff(CHIYODA, "chiyoda.clerk", PASSWORD, {"reviewer"}))
    now = time.time()
    a = directory.staff_login("kitami.clerk", PASSWORD, totp(kitami, now), at=now)
    b = directory.staff_login("chiyoda.clerk", PASSWORD, totp(chiyoda, now), at=now)
    assert a.can_see(KITAMI) and not a.can_see(CHIYODA)
    assert b.can_see(CHIYODA) and not b.can_see(KITAMI)


def test_account_rules(directory):
    with pytest.raises(ValueError):
        directory.create_staff("012085", "sato.k", PASSWORD, {"reviewer"})  # bad check digit
    with pytest.raises(ValueError):
        directory.create_staff(KITAMI, "sato.k", "short", {"reviewer"})
    with pytest.raises(ValueError):
        directory.create_staff(KITAMI, "sato.k", PASSWORD, {"admin"})
    with pytest.raises(ValueError):
        directory.create_staff(KITAMI, "Sato K", PASSWORD, {"reviewer"})
    directory.create_staff(KITAMI, "sato.k", PASSWORD, {"reviewer"})
    with pytest.raises(StaffError) as refused:
        directory.create_staff(CHIYODA, "sato.k", PASSWORD, {"reviewer"})
    assert refused.value.reason == "username-taken"


def test_remove_and_unlock_answer_whether_the_account_exists(directory):
    directory.create_staff(KITAMI, "sato.k", PASSWORD, {"reviewer"})
    assert directory.unlock("sato.k") and not directory.unlock("nobody")
    assert directory.remove("sato.k") and not directory.remove("sato.k")
    directory.create_staff(KITAMI, "sato.k", PASSWORD, {"approver"})  # the name is free again


def test_check_digits_of_real_municipalities():
    for code in ("012084", "131016", "132012", "232025", "472018", "110001", "090000"):
        assert check_municipality(code) == code


def test_password_hashes_are_salted_scrypt():
    a, b = hash_password(PASSWORD), hash_password(PASSWORD)
    assert a != b and a.startswith("scrypt$16384$8$1$")
    assert verify_password(PASSWORD, a) and not verify_password("other", a)


def test_provisioning_uri():
    uri = provisioning_uri("sato.k", "JBSWY3DPEHPK3PXP")
    assert uri.startswith("otpauth://totp/Public%20Service%20Mesh%3Asato.k?secret=JBSWY3DPEHPK3PXP")
