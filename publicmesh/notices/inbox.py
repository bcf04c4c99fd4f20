"""Sending notices (one or 100,000 at a time, idempotently), reading the inbox, and nudging by email or SMS."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine, func, select, update

from publicmesh.notices.channels import Channel, OutgoingMessage
from publicmesh.notices.model import (
    CONTACT_FOR_CHANNEL,
    Notice,
    NoticeDraft,
    NoticeNotFound,
    check_sender,
    dumps,
    new_id,
    text_id,
    to_text,
    utc_now,
)
from publicmesh.notices.schema import KEY_COLUMNS, contacts, ensure_schema, notices, row_notice, with_texts
from publicmesh.notices.texts import Texts, store_texts, texts_of
from publicmesh.storage import upsert
from publicmesh.storage.bulk import bulk_rows_for

MAX_PAGE = 100
BULK_CHUNK = 10_000

# The nudge says only that something arrived: email and SMS are not confidential, the notice stays in the portal.
NUDGE_SUBJECT = "【公共サービスメッシュ】新しいお知らせがあります / You have a new notice"
NUDGE_BODY = (
    "マイページに新しいお知らせが届きました。ポータルにログインしてご確認ください。\n"
    "A new notice has arrived. Please log in to the portal to read it.\n"
    "（このメールに個人情報は含まれません / This message contains no personal information.)"
)
NUDGE_SMS = "公共サービスメッシュ: 新しいお知らせがあります。ポータルでご確認ください。"


class _Rows:
    """Turns drafts into rows, encoding the few distinct delivery maps and texts once instead of per notice."""

    def __init__(self, now: datetime) -> None:
        self.now = to_text(now)
        self._delivery: dict[tuple[str, ...], str] = {}
        self._text_ids: dict[Texts, str] = {}
        self.new_texts: dict[str, Texts] = {}  # first seen since they were last stored

    def __call__(self, draft: NoticeDraft) -> dict[str, object]:
        draft.check()
        delivery = self._delivery.get(draft.channels)
        if delivery is None:
            delivery = dumps({"inbox": "delivered", **{c: "queued" for c in draft.channels}})
            self._delivery[draft.channels] = delivery
        texts = (draft.title_ja, draft.title_en, draft.body_ja, draft.body_en)
        text = self._text_ids.get(texts)
        if text is None:
            text = self._text_ids[texts] = text_id(texts)
            self.new_texts[text] = texts
        notice_id = new_id()
        return {
            "id": notice_id,
            "person_ref": draft.person_ref,
            "sender": draft.sender,
            "idempotency_key": draft.idempotency_key or notice_id,
            "category": draft.category,
            "text_id": text,
            "links": dumps(draft.links) if draft.links else "{}",
            "delivery": delivery,
            "pending": 1 if draft.channels else 0,
            "created_at": self.now,
            "read_at": None,
        }

    def store_new_texts(self, conn: Connection) -> None:
        store_texts(conn, self.new_texts)
        self.new_texts = {}


def send(engine: Engine, draft: NoticeDraft, *, now: datetime | None = None) -> Notice:
    """Puts a notice in the person's inbox; sending the person the same (sender, idempotency key) again returns
    the first. Keys are each inbox's: the same key to another person is that person's own notice."""
    ensure_schema(engine)
    to_row = _Rows(now or utc_now())
    row = to_row(draft)
    with engine.begin() as conn:
        to_row.store_new_texts(conn)
        upsert(conn, notices, row, KEY_COLUMNS)  # sent before: the first stays
        stored = conn.execute(with_texts().where(*(notices.c[c] == row[c] for c in KEY_COLUMNS))).mappings().one()
    return row_notice(stored)


def _chunks(items: Iterable[NoticeDraft], size: int) -> Iterator[list[NoticeDraft]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def send_many(engine: Engine, drafts: Iterable[NoticeDraft], *, now: datetime | None = None) -> int:
    """Bulk send (one statement per chunk); drafts whose key was already sent are skipped. Returns how many new.

    Each chunk commits on its own, so a crash midway loses nothing acknowledged, and re-running the same drafts
    after one sends only the rest.
    """
    ensure_schema(engine)
    to_row = _Rows(now or utc_now())
    inserted = 0
    for chunk in _chunks(drafts, BULK_CHUNK):
        rows = [to_row(draft) for draft in chunk]
        with engine.begin() as conn:
            to_row.store_new_texts(conn)
            inserted += bulk_rows_for(engine).write_in(
                conn, notices, pa.table({c: [row[c] for row in rows] for c in _COLUMNS}), key=KEY_COLUMNS
            )
    return inserted


_COLUMNS = [column.name for column in notices.columns]
_INBOX_ONLY = dumps({"inbox": "delivered"})


def send_table(
    engine: Engine, sender: str, table: pa.Table, *, now: datetime | None = None, chunk: int | None = None
) -> int:
    """send_many for notices in Arrow columns, as mesh.notices_wire checks them (subject, key and link a value per
    notice; the texts and the category dictionary-encoded). The inbox only (no email or SMS nudge: a service's
    notices to a whole municipality wait in the portal). The distinct texts are stored first; then the notices, in
    one transaction (or one per ``chunk``); keys already sent are skipped. Returns how many are new.

    One transaction: a request through the hub is acknowledged once all its notices are stored, so committing parts
    of it acknowledges nothing sooner, and each index page is written once instead of once per part (a
    municipality's 260,000 notices took 4.6 s in parts of 50,000, 1.9 s in one)."""
    chunk = chunk or max(table.num_rows, 1)
    ensure_schema(engine)
    check_sender(sender)
    text_ids, texts = texts_of(table)
    link = table.column("link")
    per_notice = pa.table(
        {
            "person_ref": table.column("subject"),
            "idempotency_key": table.column("key"),
            "category": table.column("category"),
            "text_id": text_ids,
            # a link is a portal path (no quote or backslash can pass notices_wire), so this is its JSON text
            "links": pc.if_else(pc.is_valid(link), pc.binary_join_element_wise('{"open":"', link, '"}', ""), "{}"),
        }
    )
    same = {
        "sender": sender,
        "delivery": _INBOX_ONLY,
        "pending": 0,
        "created_at": to_text(now or utc_now()),
        "read_at": None,
    }
    with engine.begin() as conn:
        store_texts(conn, texts)
    rows = bulk_rows_for(engine)
    return sum(
        rows.write(
            engine,
            notices,
            _chunk_to_store(per_notice.slice(start, chunk)),
            key=KEY_COLUMNS,
            same=same,
            cache_kib=_CACHE_KIB,
        )
        for start in range(0, per_notice.num_rows, chunk)
    )


def _chunk_to_store(part: pa.Table) -> pa.Table:
    """A chunk of notices with their new ids, in the order of their key (led by the person), so each page of its
    index is visited once per chunk."""
    part = part.take(pc.sort_indices(part, [("person_ref", "ascending")]))
    return part.add_column(0, "id", _new_ids(part.num_rows))


# The page cache of a bulk write of notices on SQLite: their index has random keys (the person leads it), and with
# SQLite's 2 MB nearly every insert read an index page and wrote another out mid-transaction.
_CACHE_KIB = 64 * 1024


def _new_ids(count: int) -> pa.Array:
    """new_id() for ``count`` notices at once: the time in ms (12 hex digits), then 20 random hex digits each."""
    prefix = np.frombuffer(f"{time.time_ns() // 1_000_000:012x}".encode(), dtype=np.uint8)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    random = np.frombuffer(secrets.token_bytes(10 * count), dtype=np.uint8).reshape(count, 10)
    text = np.empty((count, 32), dtype=np.uint8)
    text[:, :12] = prefix
    text[:, 12::2] = digits[random >> 4]
    text[:, 13::2] = digits[random & 15]
    offsets = np.arange(0, 32 * (count + 1), 32, dtype=np.int32)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(text.tobytes()))


def inbox(
    engine: Engine,
    person_ref: str,
    limit: int = 20,
    offset: int = 0,
    *,
    category: str | None = None,
    unread_only: bool = False,
) -> list[Notice]:
    """One page of the person's notices, newest first."""
    ensure_schema(engine)
    query = with_texts().where(notices.c.person_ref == person_ref)
    if category is not None:
        query = query.where(notices.c.category == category)
    if unread_only:
        query = query.where(notices.c.read_at.is_(None))
    query = query.order_by(notices.c.created_at.desc(), notices.c.id.desc())
    query = query.limit(max(0, min(limit, MAX_PAGE))).offset(max(0, offset))
    with engine.connect() as conn:
        return [row_notice(row) for row in conn.execute(query).mappings()]


def unread_count(engine: Engine, person_ref: str) -> int:
    """How many of the person's notices are unread (the badge on the portal)."""
    ensure_schema(engine)
    with engine.connect() as conn:
        return conn.execute(
            select(func.count())
            .select_from(notices)
            .where(notices.c.person_ref == person_ref, notices.c.read_at.is_(None))
        ).scalar_one()


def get_notice(engine: Engine, notice_id: str, person_ref: str) -> Notice:
    """The person's own notice; NoticeNotFound when unknown or someone else's (the portal answers 404)."""
    ensure_schema(engine)
    with engine.connect() as conn:
        row = (
            conn.execute(with_texts().where(notices.c.id == notice_id, notices.c.person_ref == person_ref))
            .mappings()
            .first()
        )
    if row is None:
        raise NoticeNotFound(notice_id)
    return row_notice(row)


def mark_read(engine: Engine, notice_id: str, person_ref: str, *, now: datetime | None = None) -> Notice:
    """Marks the person's own notice read (the first reading time is kept); NoticeNotFound otherwise."""
    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(
            update(notices)
            .where(notices.c.id == notice_id, notices.c.person_ref == person_ref, notices.c.read_at.is_(None))
            .values(read_at=to_text(now or utc_now()))
        )
    return get_notice(engine, notice_id, person_ref)


def mark_all_read(engine: Engine, person_ref: str, *, now: datetime | None = None) -> int:
    """Marks every unread notice of the person read; returns how many."""
    ensure_schema(engine)
    with engine.begin() as conn:
        return conn.execute(
            update(notices)
            .where(notices.c.person_ref == person_ref, notices.c.read_at.is_(None))
            .values(read_at=to_text(now or utc_now()))
        ).rowcount


def dispatch_queued(engine: Engine, channel: Channel, *, limit: int = 500) -> int:
    """Sends the email/SMS nudges of queued notices through ``channel``; returns how many notices it handled.

    A notice is claimed (pending 1 → 0) before its nudge goes out, so two dispatchers never both send it; a crash
    between claim and send loses only the nudge, never the notice, which is already in the inbox.
    """
    ensure_schema(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            select(notices.c.id, notices.c.person_ref, notices.c.delivery).where(notices.c.pending == 1).limit(limit)
        ).all()
    handled = 0
    for notice_id, person_ref, delivery_json in rows:
        with engine.begin() as conn:
            claimed = conn.execute(
                update(notices)
                .where(notices.c.id == notice_id, notices.c.person_ref == person_ref, notices.c.pending == 1)
                .values(pending=0)
            ).rowcount
            found = conn.execute(
                select(contacts.c.kind, contacts.c.address).where(contacts.c.person_ref == person_ref)
            ).all()
        if claimed != 1:
            continue
        addresses = dict(found)
        delivery = json.loads(delivery_json)
        for name, status in delivery.items():
            if status != "queued":
                continue
            address = addresses.get(CONTACT_FOR_CHANNEL.get(name, ""))
            delivery[name] = _nudge(channel, name, address, notice_id) if address else "no-contact"
        with engine.begin() as conn:
            conn.execute(
                update(notices)
                .where(notices.c.id == notice_id, notices.c.person_ref == person_ref)
                .values(delivery=dumps(delivery))
            )
        handled += 1
    return handled


def _nudge(channel: Channel, name: str, address: str, notice_id: str) -> str:
    if name == "sms":
        message = OutgoingMessage("sms", address, "", NUDGE_SMS, notice_id)
    else:
        message = OutgoingMessage("email", address, NUDGE_SUBJECT, NUDGE_BODY, notice_id)
    try:
        channel.send(message)
    except Exception:  # a channel outage must not stop the other notices; the status tells the operator
        return "failed"
    return "sent"
