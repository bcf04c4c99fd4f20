"""Tables of the audit store (SQLAlchemy Core); portable between SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, MetaData, Table, Text, func, inspect
from sqlalchemy.exc import DBAPIError

from publicmesh.audit.records import ExchangeRecord

metadata = MetaData()
_ATTRIBUTES = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

# On SQLite an INTEGER primary key is the rowid: appends and position-range scans stay on the table b-tree.
_Position = BigInteger().with_variant(Integer(), "sqlite")

records = Table(
    "audit_records",
    metadata,
    Column("position", _Position, primary_key=True, autoincrement=False),
    Column("kind", Text, nullable=False),
    Column("at", Text, nullable=False),
    Column("consumer", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("dataset", Text, nullable=False),
    Column("attributes", Text, nullable=False),  # JSON array of attribute names
    Column("purpose", Text, nullable=False),
    Column("legal_basis", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("request_id", Text, nullable=False),
    Column("outcome", Text, nullable=False),
)

# Subject access requests list one person's records newest first. The pairs live in their own table (clustered
# by subject on SQLite) rather than in an index of audit_records, so that an append of a whole municipality's
# records writes them in subject order, page by page, instead of one random index insert per record.
subjects = Table(
    "audit_subjects",
    metadata,
    Column("subject", Text, primary_key=True),
    Column("position", _Position, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)

# An exchange record about many subjects (one bulk exchange) has, besides its audit_records row (subject ''), the
# count and root of its subject tree, and its sorted subjects in pages (audit/subjects.py). A person's records
# are found by seeking, in each such record, the page whose first subject precedes theirs. A record about the very
# same subjects as an earlier one (a municipality's person and household scans) names that record's pages
# (pages_at) instead of storing them again; its leaf commits to the count and root, which those pages must give.
batches = Table(
    "audit_batches",
    metadata,
    Column("position", _Position, primary_key=True, autoincrement=False),
    Column("subject_count", BigInteger, nullable=False),
    Column("subject_root", LargeBinary, nullable=False),
    Column("pages_at", _Position, nullable=True),
)

subject_pages = Table(
    "audit_subject_pages",
    metadata,
    Column("position", _Position, primary_key=True, autoincrement=False),
    Column("first_subject", Text, primary_key=True),
    Column("page", Integer, nullable=False),
    Column("subjects", Text, nullable=False),  # JSON array of the page's subjects, sorted
    Column("page_root", LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)

# Leaf hashes live apart from the records so that rewriting a record alone is caught by its leaf,
# and rewriting both is caught by the signed checkpoints.
leaves = Table(
    "audit_leaves",
    metadata,
    Column("position", _Position, primary_key=True, autoincrement=False),
    Column("leaf_hash", LargeBinary, nullable=False),
)

checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("tree_size", _Position, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary, nullable=False),
    Column("timestamp", Text, nullable=False),
    Column("signature", LargeBinary, nullable=False),
)

# Witnesses' cosignatures of checkpoints, as the hub received them. Kept for the person and the operator to see;
# what catches a log cut back is the witness's own store, which the hub cannot rewrite.
cosignatures = Table(
    "audit_cosignatures",
    metadata,
    Column("tree_size", _Position, primary_key=True, autoincrement=False),
    Column("witness", Text, primary_key=True),
    Column("cosigned_at", BigInteger, nullable=False),
    Column("signature", LargeBinary, nullable=False),
)

# One row (id = 1): the log's head. Appenders lock it first, which serializes writers across processes
# (a row lock on PostgreSQL, the database write lock on SQLite), and it keeps the compact range so a
# restart never re-reads the leaves.
frontier = Table(
    "audit_frontier",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("hashes", LargeBinary, nullable=False),
)

HEAD_ID = 1


def upgrade(engine) -> None:
    """A store made before audit_batches.pages_at gets the column (its records keep their own pages)."""

    def present() -> bool:
        return "pages_at" in {c["name"] for c in inspect(engine).get_columns(batches.name)}

    if not present():
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"ALTER TABLE {batches.name} ADD COLUMN pages_at BIGINT")
        except DBAPIError:
            if not present():  # not another process adding it at the same moment
                raise


def pages_of(table=batches):
    """The position whose pages list a record's subjects: its own, or the earlier record's it names."""
    return func.coalesce(table.c.pages_at, table.c.position)


def encode_attributes(attributes) -> str:
    """The ``attributes`` column: a JSON array of the names."""
    return _ATTRIBUTES.encode(list(attributes))


def record_row(position: int, record: ExchangeRecord) -> dict[str, object]:
    """The ``audit_records`` row of a record."""
    row = record.as_dict()
    row["attributes"] = encode_attributes(row["attributes"])
    row["position"] = position
    return row


def row_record(row: Mapping[Any, Any]) -> ExchangeRecord:
    """The record stored in an ``audit_records`` row (raises ValueError/TypeError if it cannot be one)."""
    # A row mapping's values are whatever the database returned: ExchangeRecord checks that each is a str.
    attributes = json.loads(row["attributes"])
    if not isinstance(attributes, list):
        raise ValueError("attributes column is not a JSON array")
    return ExchangeRecord(
        kind=row["kind"],
        at=row["at"],
        consumer=row["consumer"],
        provider=row["provider"],
        dataset=row["dataset"],
        attributes=tuple(attributes),
        purpose=row["purpose"],
        legal_basis=row["legal_basis"],
        subject=row["subject"],
        request_id=row["request_id"],
        outcome=row["outcome"],
    )
