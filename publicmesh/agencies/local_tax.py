"""Local tax (個人住民税), one tenant per municipality: taxable income and tax amounts by fiscal year."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Boolean, Column, Connection, Integer, MetaData, String, Table, update

from publicmesh.provider.datasets import Attribute, Dataset
from publicmesh.provider.definition import AgencyDefinition

if TYPE_CHECKING:  # Polars is imported where it is used: a part that never reads in bulk does not load it
    import polars as pl

FISCAL_YEAR = 2026  # 令和8年度 (based on 2025 income)
PER_CAPITA = 5_000  # 均等割 (市町村 3,000 + 道府県 1,000) + 森林環境税 1,000
EXEMPT_INCOME = 450_000  # 合計所得金額 45万円以下は非課税 (単身の目安)
_YEN = {"type": "integer", "minimum": 0}

metadata = MetaData()
assessments = Table(
    "assessments",
    metadata,
    Column("tenant", String(6), primary_key=True),
    Column("pseudonym", String(22), primary_key=True, index=True),
    Column("fiscal_year", Integer, primary_key=True),
    Column("income", BigInteger, nullable=False),
    Column("taxable_income", BigInteger, nullable=False),
    Column("municipal_tax", BigInteger, nullable=False),
    Column("prefectural_tax", BigInteger, nullable=False),
    Column("tax_exempt", Boolean, nullable=False),
    sqlite_with_rowid=False,  # a municipality's rows together: see layout
)

ASSESSMENT = Dataset(
    "assessment",
    "個人住民税の課税情報",
    "Resident tax assessment",
    (
        Attribute("fiscal_year", {"type": "integer"}, "年度", "Fiscal year", "tax"),
        Attribute("income", _YEN, "合計所得金額", "Total income (yen)", "tax"),
        Attribute("taxable_income", _YEN, "課税総所得金額", "Taxable income (yen)", "tax"),
        Attribute("municipal_tax", _YEN, "市町村民税額", "Municipal tax (yen)", "tax"),
        Attribute("prefectural_tax", _YEN, "道府県民税額", "Prefectural tax (yen)", "tax"),
        Attribute("tax_exempt", {"type": "boolean"}, "非課税", "Exempt from resident tax", "tax"),
    ),
    table=assessments,
    order_by="fiscal_year",
)


def assess(income: pl.Expr, taxable: pl.Expr) -> list[pl.Expr]:
    """所得割 10% (市町村 6%, 道府県 4%) plus 均等割, unless income is under the exemption line."""
    import polars as pl  # noqa: PLC0415 — on first use, as said above

    exempt = income <= EXEMPT_INCOME
    return [
        exempt.alias("tax_exempt"),
        pl.when(exempt).then(0).otherwise((taxable * 6) // 100 + 3_000 + 1_000).alias("municipal_tax"),
        pl.when(exempt).then(0).otherwise((taxable * 4) // 100 + 1_000).alias("prefectural_tax"),
    ]


def seed(chunk: pl.DataFrame, pseudonyms) -> dict[Table, pl.DataFrame]:
    import polars as pl  # noqa: PLC0415 — on first use, as said above

    living = chunk.with_columns(pl.Series("pseudonym", pseudonyms)).filter(
        pl.col("death_date").is_null() & (pl.col("employment") != "child")
    )
    rows = living.select(
        pl.col("municipality_code").alias("tenant"),
        "pseudonym",
        pl.lit(FISCAL_YEAR).alias("fiscal_year"),
        "income",
        "taxable_income",
        *assess(pl.col("income"), pl.col("taxable_income")),
    )
    return {assessments: rows}


def update_income(conn: Connection, agency: AgencyDefinition, tenant: str | None, event: dict) -> None:
    """An income correction from national tax (所得税の更正) re-assesses the resident tax."""
    import polars as pl  # noqa: PLC0415 — on first use, as said above

    data = event["data"]
    income, taxable = int(data["income"]), int(data["taxable_income"])
    frame = pl.DataFrame({"income": [income], "taxable_income": [taxable]}).select(
        *assess(pl.col("income"), pl.col("taxable_income"))
    )
    conn.execute(
        update(assessments)
        .where(
            assessments.c.tenant == tenant,
            assessments.c.pseudonym == event["subject"],
            assessments.c.fiscal_year == FISCAL_YEAR,
        )
        .values(income=income, taxable_income=taxable, **frame.row(0, named=True))
    )


AGENCY = AgencyDefinition(
    system="local-tax",
    title_ja="地方税（個人住民税）",
    title_en="Local tax",
    metadata=metadata,
    datasets={"assessment": ASSESSMENT},
    seed=seed,
    handlers={"income-update": update_income},
)
