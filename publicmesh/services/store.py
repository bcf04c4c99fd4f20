"""The services part's own store: offers made at publishing, applications, their history, and payouts.

Uniqueness does the work the 2020 online applications lacked: one offer and one live application (not withdrawn)
per service and unit (person or household), enforced by the database, so a re-publish or a double tap cannot pay
twice.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.schema import CreateTable

metadata = MetaData()

publications = Table(
    "publications",
    metadata,
    Column("service_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("content_hash", String(64), nullable=False),
    Column("definition", Text, nullable=False),  # the YAML as published
    Column("published_at", DateTime(timezone=True), nullable=False),
    Column("eligible", BigInteger, nullable=False),
    Column("total_yen", BigInteger, nullable=False),
)

offers = Table(
    "offers",
    metadata,
    Column("id", String(32), primary_key=True),  # time-sorted: a municipality's offers are appended to its index
    Column("service_id", String(64), nullable=False),
    Column("unit_key", String(22), nullable=False),  # the household key (or the person) in our pseudonyms
    Column("subject", String(22), nullable=False),  # who receives the notice and applies
    Column("tenant", String(6), nullable=False),  # the municipality
    Column("amount_yen", BigInteger, nullable=False),
    Column("form", JSON, nullable=False),  # the values fetched through the hub at publishing: see offers.full_form
    Column("version", Integer, nullable=False),
    Column("offered_at", DateTime(timezone=True), nullable=False),
)
# One offer per unit and service. Led by the unit, the same index finds the offers a person receives as the unit
# itself (a household's head, a person: nearly all), so only the others (a birth's offer, to the household's head)
# need an index by subject: publishing a municipality then writes into one index of random keys, not two. (A name
# of its own: the constraint it replaces, on service and unit, was one_offer_per_unit.)
one_offer_per_unit = Index("one_offer_per_unit_and_service", offers.c.unit_key, offers.c.service_id, unique=True)
offers_to_others = Index(
    "ix_offers_subject_not_unit",
    offers.c.subject,
    sqlite_where=offers.c.subject != offers.c.unit_key,
    postgresql_where=offers.c.subject != offers.c.unit_key,
)

# What every offer of one service definition shares (titles, the fields' names, labels and formats, what the
# person types), once: a published offer's form holds only its values and the id of its shape (services/offers.py).
offer_shapes = Table(
    "offer_shapes",
    metadata,
    Column("id", String(32), primary_key=True),  # the shape's own digest: a changed definition has another
    Column("shape", JSON, nullable=False),
)

applications = Table(
    "applications",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("service_id", String(64), nullable=False),
    Column("unit_key", String(22), nullable=False),
    Column("offer_id", String(32), nullable=False),
    Column("subject", String(22), nullable=False, index=True),
    Column("tenant", String(6), nullable=False, index=True),
    Column("amount_yen", BigInteger, nullable=False),
    Column(
        "status", String(16), nullable=False, index=True
    ),  # received, in-review, approved, rejected, paid, returned, withdrawn
    Column("channel", String(16), nullable=False),  # tap, prior-intent, proxy
    Column("reason", Text),
    Column("signature", Text),  # the signed application (JSON: content, signature, certificate) for taps
    Column("needs_four_eyes", Boolean, nullable=False, default=False),
    Column("reviewed_by", String(64)),
    Column("approved_by", String(64)),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True)),
    Column("paid_at", DateTime(timezone=True)),
    Column("payout_file", String(128)),
)
# One live application per service and unit: a withdrawn one (取下げ) no longer counts, so the unit may apply again.
one_live_application = Index(
    "one_live_application_per_unit",
    applications.c.service_id,
    applications.c.unit_key,
    unique=True,
    sqlite_where=applications.c.status != "withdrawn",
    postgresql_where=applications.c.status != "withdrawn",
)

history = Table(
    "application_history",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("application_id", String(32), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("actor", String(64), nullable=False),  # "rules", "resident", a staff id
    Column("reason", Text),
    Column("at", DateTime(timezone=True), nullable=False),
)

withdrawals = Table(  # 取下げ: the signed withdrawal, kept as the application's signature is
    "application_withdrawals",
    metadata,
    Column("application_id", String(32), primary_key=True),
    Column("signature", Text, nullable=False),  # JSON: content, signature, certificate
    Column("actor", String(64), nullable=False),  # "resident" or "proxy"
    Column("at", DateTime(timezone=True), nullable=False),
)

# 額改定: a revision offer for the difference, when a birth raises what an applying household is owed
amount_revisions = Table(
    "amount_revisions",
    metadata,
    Column("offer_id", String(32), primary_key=True),
    Column("service_id", String(64), nullable=False),
    Column("household", String(22), nullable=False),  # the unit_key of the household's own offer
    Column("child", String(22), nullable=False),  # the birth that opened it (the offer's unit_key)
    Column("previous_yen", BigInteger, nullable=False),  # awarded before
    Column("revised_yen", BigInteger, nullable=False),  # owed now: the offer is for the difference
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_amount_revisions_household", "service_id", "household"),
)

payout_files = Table(
    "payout_files",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("tenant", String(6), nullable=False),
    Column("service_id", String(64), nullable=False),
    Column("transfer_date", String(10), nullable=False),
    Column("count", Integer, nullable=False),
    Column("total_yen", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# The outbox of a publish (and of a birth's offers): a row is committed before a municipality's offers are written,
# naming the offers it covers (the service, the municipality, and the range of their time-sorted ids), and marked
# sent once their notices are in the portal and the applications of prior intents are made. A row left unsent (a
# process killed in between) is finished by the next publish or when the services part starts: the inbox keeps one
# notice per key and a unit one live application, so finishing twice sends nothing twice.
announcements = Table(
    "offer_announcements",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("service_id", String(64), nullable=False),
    Column("tenant", String(6), nullable=False),
    Column("first_offer", String(32), nullable=False),  # no offer it covers has a smaller id
    Column("last_offer", String(32)),  # the largest id written (None: the process died while writing them)
    Column("definition", JSON, nullable=False),  # what the notices say and how prior intents are decided
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Index("ix_offer_announcements_unsent", "sent_at", "service_id"),
)

# The publish as a work queue (services.jobs): one job per municipality of a publish, taken by any publisher
# worker under a lease it renews while it works; a job whose worker died is taken again when its lease ends, and
# done is written with the job's figures once its offers are announced.
publish_jobs = Table(
    "publish_jobs",
    metadata,
    Column("id", String(96), primary_key=True),  # the publish's id and the municipality
    Column("publish_id", String(64), nullable=False, index=True),
    Column("tenant", String(6), nullable=False),
    Column("definition", JSON, nullable=False),
    Column("state", String(8), nullable=False),  # queued, taken, done
    Column("worker", String(64)),
    Column("lease_until", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False),
    Column("result", JSON),  # the municipality's figures, as Summary.by_municipality has them, and more
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("done_at", DateTime(timezone=True)),
    Index("ix_publish_jobs_waiting", "state", "lease_until"),
)

# Births the registry reported (the 'birth' event, delivered through the hub): each runs the services whose
# definitions name the birth trigger, for the newborn's household, once.
births = Table(
    "birth_triggers",
    metadata,
    Column("event_id", String(128), primary_key=True),  # the registry's event id: a redelivery changes nothing
    Column("tenant", String(6), nullable=False),
    Column("child", String(22), nullable=False),  # in this part's pseudonyms
    Column("parents", JSON, nullable=False),
    Column("born_on", String(10), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("handled_at", DateTime(timezone=True), index=True),
    Column("outcome", Text),  # what was offered, or why nothing was
)


def upgrade(engine: Engine) -> None:
    """A store made by an earlier version brought up to date, at every start (a second run changes nothing)."""
    with engine.begin() as conn:
        metadata.create_all(conn)  # the tables it lacks, as now declared
        _live_applications(conn)
        _offers_by_unit(conn)


def _live_applications(conn) -> None:
    """A store made before a withdrawn application stopped counting: its one-application-per-unit constraint gives
    way to the partial index. SQLite cannot drop a constraint, so its table is rebuilt, rows and all."""
    if conn.dialect.name == "postgresql":  # a dialect's own SQL: only PostgreSQL can drop a constraint
        conn.execute(text("ALTER TABLE applications DROP CONSTRAINT IF EXISTS one_application_per_unit"))
    elif "one_application_per_unit" in _sqlite_definition(conn, "applications"):
        _rebuild(conn, applications)
    one_live_application.create(conn, checkfirst=True)


def _offers_by_unit(conn) -> None:
    """A store made before offers were indexed by unit first: its (service, unit) constraint and its index of every
    subject give way to one_offer_per_unit and offers_to_others (SQLite rebuilds the table to drop the former)."""
    if conn.dialect.name == "postgresql":  # a dialect's own SQL: only PostgreSQL can drop a constraint
        conn.execute(text("ALTER TABLE offers DROP CONSTRAINT IF EXISTS one_offer_per_unit"))
    elif "one_offer_per_unit UNIQUE" in _sqlite_definition(conn, "offers"):
        _rebuild(conn, offers)
    conn.execute(text("DROP INDEX IF EXISTS ix_offers_subject"))
    one_offer_per_unit.create(conn, checkfirst=True)
    offers_to_others.create(conn, checkfirst=True)


def _sqlite_definition(conn, table: str) -> str:
    return (
        conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"), {"t": table}).scalar()
        or ""
    )


def _rebuild(conn, table: Table) -> None:
    """The table made again as now declared, its rows copied in their order, then its indexes (sorted once)."""
    before = f"{table.name}_before"
    conn.execute(text(f'ALTER TABLE "{table.name}" RENAME TO "{before}"'))
    for (name,) in conn.execute(
        text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL"), {"t": before}
    ).all():
        conn.execute(text(f'DROP INDEX "{name}"'))
    conn.execute(CreateTable(table))
    columns = ", ".join(c.name for c in table.columns)
    conn.execute(text(f'INSERT INTO "{table.name}" ({columns}) SELECT {columns} FROM "{before}" ORDER BY rowid'))
    conn.execute(text(f'DROP TABLE "{before}"'))
    for index in table.indexes:
        index.create(conn)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
