"""The resident's inbox and e-delivery (お知らせ / 電子送達): notices, delivery channels, verified contacts."""

from publicmesh.notices.channels import Channel, LogChannel, OutgoingMessage
from publicmesh.notices.inbox import (
    dispatch_queued,
    get_notice,
    inbox,
    mark_all_read,
    mark_read,
    send,
    send_many,
    send_table,
    unread_count,
)
from publicmesh.notices.model import (
    CATEGORIES,
    CHANNELS,
    Contact,
    Notice,
    NoticeDraft,
    NoticeNotFound,
    VerificationRateLimited,
)
from publicmesh.notices.schema import STORE, ensure_schema, open_store
from publicmesh.notices.verification import (
    confirm_contact,
    contacts_of,
    normalize_address,
    remove_contact,
    start_contact_verification,
)

contacts = contacts_of  # the name the portal uses: contacts(engine, person_ref)

__all__ = [
    "CATEGORIES",
    "CHANNELS",
    "STORE",
    "Channel",
    "Contact",
    "LogChannel",
    "Notice",
    "NoticeDraft",
    "NoticeNotFound",
    "OutgoingMessage",
    "VerificationRateLimited",
    "confirm_contact",
    "contacts",
    "contacts_of",
    "dispatch_queued",
    "ensure_schema",
    "get_notice",
    "inbox",
    "mark_all_read",
    "mark_read",
    "normalize_address",
    "open_store",
    "remove_contact",
    "send",
    "send_many",
    "send_table",
    "start_contact_verification",
    "unread_count",
]
