"""Contact verification: a hashed 6-digit code through the channel, wrong codes, five tries, ten minutes."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta

import pytest

from publicmesh.notices import (
    LogChannel,
    VerificationRateLimited,
    confirm_contact,
    contacts,
    normalize_address,
    remove_contact,
    start_contact_verification,
)
from publicmesh.notices.schema import contact_codes
from publicmesh.settings import Settings

pytestmark = pytest.mark.storage

ALICE = "A" * 21 + "x"
BOB = "B" * 21 + "y"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def channel(tmp_path):
    return LogChannel.for_settings(Settings(data_dir=tmp_path, database_url=""))


def last_code(channel: LogChannel) -> str:
    return channel.messages()[-1]["body"].split(": ")[1][:6]


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_code_is_sent_hashed_and_confirms_once(engine, channel, tmp_path):
    code_id = start_contact_verification(engine, ALICE, "phone", "090-1234-5678", channel=channel, now=T0)
    message = channel.messages()[-1]
    assert (message["kind"], message["to"], message["reference"]) == ("sms", "09012345678", code_id)
    assert channel.path == tmp_path / "outbox-mail.jsonl"
    assert stat.S_IMODE(os.stat(channel.path).st_mode) == 0o600
    code = last_code(channel)
    with engine.connect() as conn:
        stored = conn.execute(contact_codes.select()).mappings().one()
    assert code.encode() not in stored["code_hash"] and len(stored["code_hash"]) == 32

    assert not confirm_contact(engine, ALICE, code_id, wrong(code), now=T0 + timedelta(minutes=1))
    assert not confirm_contact(engine, BOB, code_id, code, now=T0 + timedelta(minutes=1))  # not Bob's code
    assert contacts(engine, ALICE) == []
    assert confirm_contact(
        engine,
        ALICE,
        code_id,
        "　" + code.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
        now=T0 + timedelta(minutes=2),
    )  # full-width digits typed on a phone keyboard
    assert not confirm_contact(engine, ALICE, code_id, code, now=T0 + timedelta(minutes=3))  # used up
    [phone] = contacts(engine, ALICE)
    assert (phone.kind, phone.address, phone.verified_at) == ("phone", "09012345678", T0 + timedelta(minutes=2))


def test_five_tries_then_locked(engine, channel):
    code_id = start_contact_verification(engine, ALICE, "email", "alice@example.jp", channel=channel, now=T0)
    code = last_code(channel)
    for _ in range(5):
        assert not confirm_contact(engine, ALICE, code_id, wrong(code), now=T0)
    assert not confirm_contact(engine, ALICE, code_id, code, now=T0)  # right, but too late
    assert contacts(engine, ALICE) == []


def test_code_expires_after_ten_minutes(engine, channel):
    code_id = start_contact_verification(engine, ALICE, "email", "alice@example.jp", channel=channel, now=T0)
    assert not confirm_contact(engine, ALICE, code_id, last_code(channel), now=T0 + timedelta(minutes=10))
    code_id = start_contact_verification(engine, ALICE, "email", "alice@example.jp", channel=channel, now=T0)
    assert confirm_contact(engine, ALICE, code_id, last_code(channel), now=T0 + timedelta(minutes=9))


def test_new_address_replaces_old_and_can_be_removed(engine, channel):
    for address in ("old@example.jp", "new@example.jp"):
        code_id = start_contact_verification(engine, ALICE, "email", address, channel=channel, now=T0)
        assert confirm_contact(engine, ALICE, code_id, last_code(channel), now=T0)
    assert [c.address for c in contacts(engine, ALICE)] == ["new@example.jp"]
    assert remove_contact(engine, ALICE, "email") and contacts(engine, ALICE) == []


def test_rate_limit_and_address_checks(engine, channel):
    for _ in range(5):
        start_contact_verification(engine, ALICE, "email", "alice@example.jp", channel=channel, now=T0)
    with pytest.raises(VerificationRateLimited):
        start_contact_verification(engine, ALICE, "email", "alice@example.jp", channel=channel, now=T0)
    start_contact_verification(
        engine, ALICE, "email", "alice@example.jp", channel=channel, now=T0 + timedelta(hours=1, seconds=1)
    )
    assert normalize_address("phone", "+81 80 1234 5678") == "08012345678"
    for kind, address in (("phone", "03-1234-5678"), ("email", "alice"), ("email", "a@b"), ("fax", "1")):
        with pytest.raises(ValueError):
            normalize_address(kind, address)
