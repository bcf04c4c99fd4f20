"""Child allowance (児童手当), one tenant per municipality: recipients and pending birth claims.

Amounts follow the 2024 reform: ¥15,000 a month under 3 years, ¥10,000 from 3 to the end of high
school age, ¥30,000 for the third and later child; no income limit.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import Column, Connection, Date, Integer, MetaData, String, Table, insert, update

from publicmesh.provider.datasets import Attribute, Dataset
from publicmesh.provider.definition import AgencyDefinition

if TYPE_CHECKING:  # Polars is imported where it is used: a part that never reads in bulk does not load it
    import polars as pl

metadata = MetaData()
recipients = Table(
    "recipients",
    metadata,
    Column("tenant", String(6), primary_key=True),
    Column("pseudonym", String(22), primary_key=True, index=True),
    Column("eligible_children", Integer, nullable=False),
    Column("monthly_amount", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # paying, stopped
    Column("since", Date, nullable=False),
    sqlite_with_rowid=False,  # a municipality's rows together: see layout
)
birth_claims = Table(
    "birth_claims",
    metadata,
    Column("tenant", String(6), primary_key=True),
    Column("child", String(22), primary_key=True),
    Column("parent", String(22), nullable=False, index=True),
    Column("born_on", Date, nullable=False),
    Column("status", String(16), nullable=False),  # pending (認定請求待ち), claimed
)

RECIPIENT = Dataset(
    "recipient",
    "児童手当の受給状況",
    "Child allowance recipient",
    (
        Attribute("status", {"type": "string", "enum": ["paying", "stopped"]}, "支給状況", "Payment status", "benefit"),
        Attribute(
            "eligible_children", {"type": "integer", "minimum": 0}, "支給対象児童数", "Eligible children", "benefit"
        ),
        Attribute("monthly_amount", {"type": "integer", "minimum": 0}, "月額（円）", "Monthly amount (yen)", "benefit"),
        Attribute("since", {"type": "string", "format": "date"}, "支給開始日", "Paid since", "benefit"),
    ),
    table=recipients,
)


def monthly_amount(child_ages: pl.Expr, birth_order: pl.Expr) -> pl.Expr:
    """One child's monthly amount by age and birth order (第3子以降 ¥30,000)."""
    import polars as pl  # noqa: PLC0415 — on first use, as said above

    return pl.when(birth_order >= 3).then(30_000).when(child_ages < 3).then(15_000).otherwise(10_000)


def seed(chunk: pl.DataFrame, pseudonyms) -> dict[Table, pl.DataFrame]:
    import polars as pl  # noqa: PLC0415 — on first use, as said above

    as_of = dt.date(2026, 4, 1)
    frame = chunk.with_columns(pl.Series("pseudonym", pseudonyms))
    children = (
        frame.filter(
            (pl.col("relation") == "child")
            & pl.col("death_date").is_null()
            & (pl.col("birth_date") > pl.lit(dt.date(as_of.year - 18, 4, 1)))
        )
        .with_columns(((pl.lit(as_of) - pl.col("birth_date")).dt.total_days() // 365).alias("age"))
        .sort("household_id", "birth_date")
        .with_columns(pl.int_range(1, pl.len() + 1).over("household_id").alias("order"))
        .with_columns(monthly_amount(pl.col("age"), pl.col("order")).alias("amount"))
        .group_by("household_id")
        .agg(pl.len().alias("eligible_children"), pl.col("amount").sum().alias("monthly_amount"))
    )
    heads = frame.filter(pl.col("relation") == "head").select("household_id", "pseudonym", "municipality_code")
    rows = heads.join(children, on="household_id").select(
        pl.col("municipality_code").alias("tenant"),
        "pseudonym",
        "eligible_children",
        "monthly_amount",
        pl.lit("paying").alias("status"),
        pl.lit(dt.date(2024, 10, 1)).alias("since"),
    )
    return {recipients: rows}


def on_birth(conn: Connection, agency: AgencyDefinition, tenant: str | None, event: dict) -> None:
    """A birth in the registry opens a claim for the parent (the notice and one-tap claim come from services)."""
    data = event["data"]
    parent = next((p for p in data.get("parents", []) if p), None)
    if parent is None:
        return
    conn.execute(
        insert(birth_claims).values(
            tenant=tenant,
            child=event["subject"],
            parent=parent,
            born_on=dt.date.fromisoformat(data["birth_date"]),
            status="pending",
        )
    )


def on_death(conn: Connection, agency: AgencyDefinition, tenant: str | None, event: dict) -> None:
    conn.execute(
        update(recipients)
        .where(recipients.c.tenant == tenant, recipients.c.pseudonym == event["subject"])
        .values(status="stopped")
    )


AGENCY = AgencyDefinition(
    system="child-allowance",
    title_ja="児童手当",
    title_en="Child allowance",
    metadata=metadata,
    datasets={"recipient": RECIPIENT},
    seed=seed,
    handlers={"birth": on_birth, "death": on_death},
)
