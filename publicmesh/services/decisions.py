"""Decision notices (決定通知): what the person is told when staff approve, reject or return an application (a
returned one links to its resubmit page), or when the rules alone approve it; and the payout notice (振込のお知らせ)
when the application is paid in a transfer file, filed in the inbox as a payout.

Each notice is written in the same transaction as the decision (an outbox of notices), then sent through the hub
into the person's portal inbox. One not sent yet (the hub was down, the sender died) is sent on the next run; its
key makes a resend harmless, as the inbox keeps one notice per key.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from functools import lru_cache

import httpx
from sqlalchemy import Column, Connection, DateTime, Engine, Index, String, Table, Text, insert, select, update
from sqlalchemy.exc import IntegrityError

from publicmesh import safe_yaml
from publicmesh.protocol.client import HubError
from publicmesh.protocol.members import PORTAL
from publicmesh.services.fetch import purpose_of
from publicmesh.services.store import metadata, publications, utc_now

log = logging.getLogger(__name__)

# application status → the definition's notice for it (``decided`` is the approval, as definitions name it)
# (a payout's notice is written by record_paid, for many applications at once)
NOTICE_OF = {"approved": "decided", "rejected": "rejected", "returned": "returned"}

# For a definition without the notice (one written before ``returned`` existed, or none published): plain words.
FALLBACK = {
    "decided": (
        ("{title}の申請が承認されました", "Your application for {title} was approved"),
        ("詳しくは「申請」の画面でご確認ください。", "See Applications for the details."),
    ),
    "rejected": (
        ("{title}の申請は認められませんでした", "Your application for {title} was not approved"),
        ("理由: {reason}", "Reason: {reason}"),
    ),
    "returned": (
        ("{title}の申請が差し戻されました", "Your application for {title} was returned"),
        (
            "理由: {reason}　このお知らせを開くと、内容を直して再提出できます。",
            "Reason: {reason} Open this notice to correct your application and resubmit it.",
        ),
    ),
    "paid": (
        ("{title}を振り込みます", "{title} is being paid"),
        (
            "{amount}円を{date}に公金受取口座へ振り込みます。",
            "{amount} yen will reach your public-fund account on {date}.",
        ),
    ),
}

decision_notices = Table(
    "decision_notices",
    metadata,
    Column("key", String(128), primary_key=True),  # service:application:status, the inbox's idempotency key
    Column("application_id", String(32), nullable=False),
    Column("service_id", String(64), nullable=False),
    Column("subject", String(22), nullable=False),
    Column("title_ja", Text, nullable=False),
    Column("title_en", Text, nullable=False),
    Column("body_ja", Text, nullable=False),
    Column("body_en", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Index("ix_decision_notices_sent", "sent_at"),
)


@lru_cache(maxsize=32)
def _definition(text: str) -> dict:
    return safe_yaml.load(text) or {}


def texts_for(conn: Connection, service_id: str, kind: str, definition: dict | None = None) -> tuple[dict, dict, str]:
    """(title, body, service title) in ja and en: the definition's notice (the one being published, else the latest
    published one), else the fallback."""
    doc = definition
    if doc is None:
        row = conn.execute(
            select(publications.c.definition)
            .where(publications.c.service_id == service_id)
            .order_by(publications.c.version.desc())
            .limit(1)
        ).first()
        doc = _definition(row[0]) if row is not None else {}
    notice = (doc.get("notices") or {}).get(kind)
    service_title = doc.get("title") or {"ja": service_id, "en": service_id}
    if notice:
        return notice["title"], notice["body"], service_title
    (title_ja, title_en), (body_ja, body_en) = FALLBACK[kind]
    return {"ja": title_ja, "en": title_en}, {"ja": body_ja, "en": body_en}, service_title


def _fill(text: str, **values) -> str:
    try:
        return text.format(**values)
    except (KeyError, IndexError, ValueError):  # the definition checks refuse these; never lose a notice over one
        return text


def record(conn: Connection, application: dict, status: str, definition: dict | None = None) -> None:
    """The notice of this decision, in the decision's own transaction; nothing for other statuses (paid: see
    record_paid). ``definition``: the service being published, whose decisions are taken before its publication
    is recorded."""
    kind = NOTICE_OF.get(status)
    if kind is None:
        return
    texts = texts_for(conn, application["service_id"], kind, definition)
    try:
        with conn.begin_nested():
            conn.execute(insert(decision_notices).values(**_row(application, status, texts)))
    except IntegrityError:
        pass  # the same decision recorded twice keeps its first notice


def record_paid(conn: Connection, paid: list[dict], transfer_date: dt.date, definition: dict | None = None) -> None:
    """The payout notices of applications just marked paid in a transfer file, in that same transaction (each is
    paid once, so each key is new)."""
    if not paid:
        return
    texts = texts_for(conn, paid[0]["service_id"], "paid", definition)
    date = {
        "ja": f"{transfer_date.year}年{transfer_date.month}月{transfer_date.day}日",
        "en": f"{transfer_date.day} {transfer_date:%B %Y}",
    }
    conn.execute(insert(decision_notices), [_row(a, "paid", texts, date) for a in paid])


def _row(application: dict, status: str, texts: tuple[dict, dict, dict], date: dict | None = None) -> dict:
    title, body, service_title = texts
    amount, reason = f"{int(application['amount_yen']):,}", application.get("reason") or ""
    row = {
        "key": f"{application['service_id']}:{application['id']}:{status}",
        "application_id": application["id"],
        "service_id": application["service_id"],
        "subject": application["subject"],
        "created_at": utc_now(),
    }
    for lang in ("ja", "en"):
        values = {
            "amount": amount,
            "reason": reason,
            "title": service_title.get(lang, application["service_id"]),
            "date": (date or {}).get(lang, ""),
        }
        row[f"title_{lang}"] = _fill(title[lang], **values)[:200]
        row[f"body_{lang}"] = _fill(body[lang], **values)[:4000]
    return row


def category_of(notice: dict) -> str:
    """The inbox category: a payout notice is filed as a payout, the others as decisions."""
    return "payout" if notice["key"].endswith(":paid") else "application-decision"


def link_of(notice: dict) -> str:
    """Where the notice opens on the portal: a returned application's resubmit page, else the applications."""
    if notice["key"].endswith(":returned"):
        return f"/applications/{notice['application_id']}/resubmit"
    return "/applications"


def pending(conn: Connection, limit: int = 500) -> list[dict]:
    query = select(decision_notices).where(decision_notices.c.sent_at.is_(None))
    return [dict(r) for r in conn.execute(query.order_by(decision_notices.c.created_at).limit(limit)).mappings()]


class NoticeSender:
    """Sends pending decision notices through the hub as the services member, one run at a time."""

    def __init__(self, engine: Engine, client):
        self.engine, self.client = engine, client
        self._lock = threading.Lock()

    def send_all(self, batch: int = 50_000) -> int:
        """Every pending notice, a batch at a time, until a run sends none (what the hub refuses stays pending)."""
        total = 0
        while sent := self.send_pending(batch):
            total += sent
        return total

    def send_pending(self, limit: int = 500) -> int:
        """How many were sent; on a hub error, what is left stays pending for the next run."""
        sent = 0
        with self._lock:  # a decision and the periodic retry may ask at once; the second sends what is left
            with self.engine.connect() as conn:
                rows = pending(conn, limit)
            by_service: dict[str, list[dict]] = {}
            for r in rows:
                by_service.setdefault(r["service_id"], []).append(r)
            for service, group in by_service.items():
                notices = [
                    {
                        "subject": r["subject"],
                        "key": r["key"],
                        "title_ja": r["title_ja"],
                        "title_en": r["title_en"],
                        "body_ja": r["body_ja"],
                        "body_en": r["body_en"],
                        "link": link_of(r),
                        "category": category_of(r),
                    }
                    for r in group
                ]
                try:
                    self.client.notify(str(PORTAL), purpose_of(service), service, notices)
                except (HubError, httpx.HTTPError) as exc:
                    log.warning("decision notices for %s not sent yet (%s); will retry", service, exc)
                    continue
                with self.engine.begin() as conn:
                    conn.execute(
                        update(decision_notices)
                        .where(decision_notices.c.key.in_([r["key"] for r in group]))
                        .values(sent_at=utc_now())
                    )
                sent += len(group)
        return sent
