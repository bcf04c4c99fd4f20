"""Employment insurance (雇用保険): who is insured, with which employer, since when."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import Column, Date, MetaData, String, Table

from publicmesh.provider.datasets import Attribute, Dataset
from publicmesh.provider.definition import AgencyDefinition

if TYPE_CHECKING:  # Polars is imported where it is used: a part that never reads in bulk does not load it
    import polars as pl

metadata = MetaData()
insured = Table(
    "insured",
    metadata,
    Column("pseudonym", String(22), primary_key=True),
    Column("employer_code", String(13), nullable=False),
    Column("insured_since", Date, nullable=False),
    Column("status", String(16), nullable=False),  # insured, lost
    sqlite_with_rowid=False,  # in pseudonym order: see layout
)

INSURED = Dataset(
    "insured",
    "雇用保険の被保険者資格",
    "Employment insurance status",
    (
        Attribute("status", {"type": "string", "enum": ["insured", "lost"]}, "資格の状況", "Status", "employment"),
        Attribute(
            "employer_code",
            {"type": "string", "pattern": "^[0-9]{13}$"},
            "事業所の法人番号",
            "Employer corporate number",
            "employment",
        ),
        Attribute("insured_since", {"type": "string", "format": "date"}, "資格取得日", "Insured since", "employment"),
    ),
    table=insured,
    tenant_column=None,
)


def seed(chunk: pl.DataFrame, pseudonyms) -> dict[Table, pl.DataFrame]:
    import polars as pl  # noqa: PLC0415 — on first use, as said above

    frame = chunk.with_columns(pl.Series("pseudonym", pseudonyms)).filter(
        (pl.col("employment") == "employee") & pl.col("death_date").is_null()
    )
    # Joined at 22 or later; the day is spread by serial so the data is not all one date.
    since = pl.max_horizontal(pl.col("birth_date").dt.offset_by("22y"), pl.lit(dt.date(1990, 4, 1)))
    return {
        insured: frame.select(
            "pseudonym",
            pl.col("employer_code").fill_null("0000000000000"),
            since.dt.offset_by(pl.format("{}d", pl.col("person_index") % 365)).alias("insured_since"),
            pl.lit("insured").alias("status"),
        )
    }


AGENCY = AgencyDefinition(
    system="employment-insurance",
    title_ja="雇用保険",
    title_en="Employment insurance",
    metadata=metadata,
    gov_code="mhlw",
    datasets={"insured": INSURED},
    seed=seed,
)
