"""The inbox on a real store: idempotent and bulk sending, unread counts, reading only one's own, email nudges."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import pytest
from timing import budget

from publicmesh.notices import (
    LogChannel,
    NoticeDraft,
    NoticeNotFound,
    confirm_contact,
    dispatch_queued,
    get_notice,
    inbox,
    mark_all_read,
    mark_read,
    send,
    send_many,
    start_contact_verification,
    unread_count,
)

pytestmark = pytest.mark.storage

ALICE = "A" * 21 + "x"
BOB = "B" * 21 + "y"
KITAMI = "MUNI/012084/child-allowance"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def draft(person_ref=ALICE, key="child-allowance-2026", **kw) -> NoticeDraft:
    values = dict(
        person_ref=person_ref,
        sender=KITAMI,
        category="service-eligibility",
        title_ja="児童手当を受け取れます",
        title_en="You can receive the child allowance",
        body_ja="ワンタップで申請できます。",
        body_en="Apply with one tap.",
        links={"service_id": "child-allowance"},
        idempotency_key=key,
    )
    return NoticeDraft(**{**values, **kw})


def ref(i: int) -> str:
    return base64.urlsafe_b64encode(i.to_bytes(16, "big")).decode()[:22]


def test_send_is_idempotent(engine):
    first = send(engine, draft(), now=T0)
    again = send(engine, draft(title_en="changed"), now=T0 + timedelta(minutes=1))
    assert again == first and again.title_en == "You can receive the child allowance"
    assert first.delivery == {"inbox": "delivered"} and first.links == {"service_id": "child-allowance"}
    # The same key from another sender is another notice.
    other = send(engine, draft(sender="GOV/0100000/nta", category="info"), now=T0)
    assert other.id != first.id
    # Keys are each inbox's: the same key to another person is that person's own notice.
    bobs = send(engine, draft(person_ref=BOB), now=T0)
    assert bobs.id != first.id and bobs.person_ref == BOB and unread_count(engine, BOB) == 1
    assert send(engine, draft(person_ref=BOB, title_en="changed"), now=T0) == bobs
    # Without a key every send is new.
    assert send(engine, draft(key=None)).id != send(engine, draft(key=None)).id
    assert unread_count(engine, ALICE) == 4


def test_bad_drafts_are_refused(engine):
    for bad in (
        draft(category="spam"),
        draft(person_ref="nobody"),
        draft(sender="kitami"),
        draft(channels=("fax",)),
        draft(title_ja=""),
    ):
        with pytest.raises(ValueError):
            send(engine, bad)


def test_inbox_pages_unread_and_mark_read(engine):
    for i in range(5):
        send(engine, draft(key=f"k{i}", title_en=f"notice {i}"), now=T0 + timedelta(minutes=i))
    send(engine, draft(person_ref=BOB, key="bob"), now=T0)
    page = inbox(engine, ALICE, limit=2)
    assert [n.title_en for n in page] == ["notice 4", "notice 3"]
    assert [n.title_en for n in inbox(engine, ALICE, limit=2, offset=4)] == ["notice 0"]
    assert unread_count(engine, ALICE) == 5

    with pytest.raises(NoticeNotFound) as refused:
        mark_read(engine, page[0].id, BOB)  # not Bob's notice: looks exactly like an unknown one
    assert isinstance(refused.value, LookupError) and isinstance(refused.value, PermissionError)
    with pytest.raises(LookupError):
        mark_read(engine, "no-such-notice", ALICE)
    with pytest.raises(LookupError):
        get_notice(engine, page[0].id, BOB)
    assert unread_count(engine, ALICE) == 5

    read = mark_read(engine, page[0].id, ALICE, now=T0 + timedelta(hours=1))
    assert read.read_at == T0 + timedelta(hours=1)
    assert mark_read(engine, page[0].id, ALICE, now=T0 + timedelta(hours=2)).read_at == read.read_at
    assert unread_count(engine, ALICE) == 4
    assert page[0].id not in [n.id for n in inbox(engine, ALICE, unread_only=True)]
    assert mark_all_read(engine, ALICE) == 4 and unread_count(engine, ALICE) == 0
    assert unread_count(engine, BOB) == 1


def test_bulk_send_of_20000_skips_what_was_sent(engine):
    send(engine, draft(person_ref=ref(7), key=f"ca-2026:{ref(7)}"))
    drafts = [draft(person_ref=ref(i), key=f"ca-2026:{ref(i)}") for i in range(20_000)]
    started = time.perf_counter()
    assert send_many(engine, drafts) == 19_999
    elapsed = time.perf_counter() - started
    assert elapsed < budget(5), elapsed
    assert send_many(engine, drafts[:100] + [draft(person_ref=ref(20_000), key="new")]) == 1
    assert unread_count(engine, ref(7)) == 1 and unread_count(engine, ref(19_999)) == 1
    assert inbox(engine, ref(123))[0].idempotency_key == f"ca-2026:{ref(123)}"


def test_email_nudge_goes_only_to_a_verified_address(engine, tmp_path):
    channel = LogChannel(tmp_path / "outbox-mail.jsonl")
    code_id = start_contact_verification(engine, ALICE, "email", "alice@Example.JP", channel=channel)
    code = channel.messages()[-1]["body"].split(": ")[1][:6]
    assert confirm_contact(engine, ALICE, code_id, code)
    with_email = send(engine, draft(key="a", channels=("email", "sms")))
    bob_notice = send(engine, draft(person_ref=BOB, key="b", channels=("email",)))
    assert with_email.delivery == {"inbox": "delivered", "email": "queued", "sms": "queued"}
    assert dispatch_queued(engine, channel) == 2
    assert dispatch_queued(engine, channel) == 0  # each nudge is sent once
    assert get_notice(engine, with_email.id, ALICE).delivery == {
        "inbox": "delivered",
        "email": "sent",
        "sms": "no-contact",
    }
    assert get_notice(engine, bob_notice.id, BOB).delivery["email"] == "no-contact"
    nudge = channel.messages()[-1]
    assert nudge["to"] == "alice@example.jp" and nudge["reference"] == with_email.id
    assert "児童手当" not in nudge["body"] + nudge["subject"]  # the notice itself stays in the portal
