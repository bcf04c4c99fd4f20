"""Public pension (公的年金): enrolment kind, monthly benefit and payment status."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Column, Connection, MetaData, String, Table, update

from publicmesh.provider.datasets import Attribute, Dataset
from publicmesh.provider.definition import AgencyDefinition

if TYPE_CHECKING:  # Polars is imported where it is used: a part that never reads in bulk does not load it
    import polars as pl

metadata = MetaData()
enrolments = Table(
    "enrolments",
    metadata,
    Column("pseudonym", String(22), primary_key=True),
    Column("kind", String(16), nullable=False),  # national 国民年金, employees 厚生年金
    Column("monthly_amount", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # contributing, receiving, stopped
    sqlite_with_rowid=False,  # in pseudonym order: see layout
)

PENSION = Dataset(
    "pension",
    "年金の加入・受給状況",
    "Pension",
    (
        Attribute("kind", {"type": "string", "enum": ["national", "employees"]}, "加入制度", "Scheme", "pension"),
        Attribute(
            "status", {"type": "string", "enum": ["contributing", "receiving", "stopped"]}, "状況", "Status", "pension"
        ),
        Attribute(
            "monthly_amount", {"type": "integer", "minimum": 0}, "年金月額（円）", "Monthly benefit (yen)", "pension"
        ),
    ),
    table=enrolments,
    tenant_column=None,
)


def seed(chunk: pl.DataFrame, pseudonyms) -> dict[Table, pl.DataFrame]:
    import polars as pl  # noqa: PLC0415 — on first use, as said above

    frame = chunk.with_columns(pl.Series("pseudonym", pseudonyms)).filter(
        (pl.col("pension_kind") != "none") & pl.col("death_date").is_null()
    )
    return {
        enrolments: frame.select(
            "pseudonym",
            pl.col("pension_kind").alias("kind"),
            pl.col("pension_monthly").alias("monthly_amount"),
            pl.when(pl.col("pension_monthly") > 0)
            .then(pl.lit("receiving"))
            .otherwise(pl.lit("contributing"))
            .alias("status"),
        )
    }


def on_death(conn: Connection, agency: AgencyDefinition, tenant: str | None, event: dict) -> None:
    """死亡の届出が不要になる: the registry's death stops the pension without a form."""
    conn.execute(update(enrolments).where(enrolments.c.pseudonym == event["subject"]).values(status="stopped"))


AGENCY = AgencyDefinition(
    system="pension",
    title_ja="公的年金",
    title_en="Public pension",
    metadata=metadata,
    gov_code="jps",
    datasets={"pension": PENSION},
    seed=seed,
    handlers={"death": on_death},
)
