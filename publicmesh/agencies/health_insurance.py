"""Health insurance (医療保険): insurer kind, dependency, and enrolment of newborns on notice of birth."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Boolean, Column, Connection, MetaData, String, Table, insert, update

from publicmesh.provider.datasets import Attribute, Dataset
from publicmesh.provider.definition import AgencyDefinition

if TYPE_CHECKING:  # Polars is imported where it is used: a part that never reads in bulk does not load it
    import polars as pl

metadata = MetaData()
coverage = Table(
    "coverage",
    metadata,
    Column("pseudonym", String(22), primary_key=True),
    Column("insurer", String(16), nullable=False),  # kyokai 協会けんぽ, kokuho 国民健康保険, koki 後期高齢者
    Column("dependent", Boolean, nullable=False),
    Column("status", String(16), nullable=False),  # active, pending (出生の届出待ち), ended
    sqlite_with_rowid=False,  # in pseudonym order: see layout
)

COVERAGE = Dataset(
    "coverage",
    "医療保険の資格情報",
    "Health insurance coverage",
    (
        Attribute(
            "insurer", {"type": "string", "enum": ["kyokai", "kokuho", "koki"]}, "保険者の種別", "Insurer", "health"
        ),
        Attribute("dependent", {"type": "boolean"}, "被扶養者", "Covered as a dependent", "health"),
        Attribute(
            "status", {"type": "string", "enum": ["active", "pending", "ended"]}, "資格の状況", "Status", "health"
        ),
    ),
    table=coverage,
    tenant_column=None,
)


def seed(chunk: pl.DataFrame, pseudonyms) -> dict[Table, pl.DataFrame]:
    import polars as pl  # noqa: PLC0415 — on first use, as said above

    frame = chunk.with_columns(pl.Series("pseudonym", pseudonyms)).filter(pl.col("death_date").is_null())
    return {
        coverage: frame.select(
            "pseudonym",
            pl.col("health_insurance").alias("insurer"),
            pl.col("insurance_dependent").alias("dependent"),
            pl.lit("active").alias("status"),
        )
    }


def on_birth(conn: Connection, agency: AgencyDefinition, tenant: str | None, event: dict) -> None:
    """A newborn gets a pending enrolment the parent confirms with one tap (no paper 扶養届)."""
    conn.execute(
        insert(coverage).values(pseudonym=event["subject"], insurer="kokuho", dependent=True, status="pending")
    )


def on_death(conn: Connection, agency: AgencyDefinition, tenant: str | None, event: dict) -> None:
    conn.execute(update(coverage).where(coverage.c.pseudonym == event["subject"]).values(status="ended"))


AGENCY = AgencyDefinition(
    system="health-insurance",
    title_ja="医療保険",
    title_en="Health insurance",
    metadata=metadata,
    gov_code="mhlw",
    datasets={"coverage": COVERAGE},
    seed=seed,
    handlers={"birth": on_birth, "death": on_death},
)
