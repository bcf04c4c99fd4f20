"""National tax (国税): income tax returns by year and the taxpayer's address on record."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Column, Connection, Integer, MetaData, String, Table, update

from publicmesh.provider.datasets import Attribute, Dataset
from publicmesh.provider.definition import AgencyDefinition
from publicmesh.provider.messaging import emit

if TYPE_CHECKING:  # Polars is imported where it is used: a part that never reads in bulk does not load it
    import polars as pl

TAX_YEAR = 2025
MEMBER = "GOV/nta/national-tax"
_YEN = {"type": "integer", "minimum": 0}

metadata = MetaData()
returns = Table(
    "returns",
    metadata,
    Column("pseudonym", String(22), primary_key=True, index=True),
    Column("tax_year", Integer, primary_key=True),
    Column("income", BigInteger, nullable=False),
    Column("taxable_income", BigInteger, nullable=False),
    Column("income_tax", BigInteger, nullable=False),
    sqlite_with_rowid=False,  # in pseudonym order: see layout
)
taxpayers = Table(
    "taxpayers",
    metadata,
    Column("pseudonym", String(22), primary_key=True),
    Column("municipality_code", String(6), nullable=False),
    Column("postal_code", String(7), nullable=False),
    Column("address", String(160), nullable=False),
)

INCOME = Dataset(
    "income",
    "所得税の申告・源泉徴収情報",
    "Income tax",
    (
        Attribute("tax_year", {"type": "integer"}, "年分", "Tax year", "tax"),
        Attribute("income", _YEN, "所得金額", "Income (yen)", "tax"),
        Attribute("taxable_income", _YEN, "課税所得金額", "Taxable income (yen)", "tax"),
        Attribute("income_tax", _YEN, "所得税額", "Income tax (yen)", "tax"),
    ),
    table=returns,
    tenant_column=None,
    order_by="tax_year",
)


def income_tax(taxable: pl.Expr) -> pl.Expr:
    """速算表 (2015– brackets) including the 2.1% reconstruction surtax, rounded down to ¥100."""
    import polars as pl  # noqa: PLC0415 — on first use, as said above

    base = (
        pl.when(taxable <= 1_949_000)
        .then(taxable * 5 // 100)
        .when(taxable <= 3_299_000)
        .then(taxable * 10 // 100 - 97_500)
        .when(taxable <= 6_949_000)
        .then(taxable * 20 // 100 - 427_500)
        .when(taxable <= 8_999_000)
        .then(taxable * 23 // 100 - 636_000)
        .when(taxable <= 17_999_000)
        .then(taxable * 33 // 100 - 1_536_000)
        .when(taxable <= 39_999_000)
        .then(taxable * 40 // 100 - 2_796_000)
        .otherwise(taxable * 45 // 100 - 4_796_000)
    )
    return (base * 1021 // 1000) // 100 * 100


def seed(chunk: pl.DataFrame, pseudonyms) -> dict[Table, pl.DataFrame]:
    import polars as pl  # noqa: PLC0415 — on first use, as said above

    frame = chunk.with_columns(pl.Series("pseudonym", pseudonyms)).filter(pl.col("income") > 0)
    return {
        returns: frame.select(
            "pseudonym",
            pl.lit(TAX_YEAR).alias("tax_year"),
            "income",
            "taxable_income",
            income_tax(pl.col("taxable_income")).alias("income_tax"),
        ),
        taxpayers: frame.select(
            "pseudonym", pl.col("residence_municipality_code").alias("municipality_code"), "postal_code", "address"
        ),
    }


def correct_income(conn: Connection, pseudonym: str, income: int, taxable_income: int) -> None:
    """更正: a corrected income reaches the municipality's resident tax through the mesh."""
    import polars as pl  # noqa: PLC0415 — on first use, as said above

    tax = pl.select(income_tax(pl.lit(taxable_income))).item()
    conn.execute(
        update(returns)
        .where(returns.c.pseudonym == pseudonym, returns.c.tax_year == TAX_YEAR)
        .values(income=income, taxable_income=taxable_income, income_tax=tax)
    )
    municipality = conn.execute(taxpayers.select().where(taxpayers.c.pseudonym == pseudonym)).first().municipality_code
    emit(
        conn,
        AGENCY.outbox,
        MEMBER,
        "income-update",
        pseudonym,
        {"tax_year": TAX_YEAR, "income": income, "taxable_income": taxable_income, "municipality_code": municipality},
    )


def on_move(conn: Connection, agency: AgencyDefinition, tenant: str | None, event: dict) -> None:
    data = event["data"]
    if "address" in data:  # withheld for protected persons: the record keeps the old address
        conn.execute(
            update(taxpayers)
            .where(taxpayers.c.pseudonym == event["subject"])
            .values(postal_code=data["postal_code"], address=data["address"])
        )


AGENCY = AgencyDefinition(
    system="national-tax",
    title_ja="国税",
    title_en="National tax",
    metadata=metadata,
    gov_code="nta",
    datasets={"income": INCOME},
    seed=seed,
    handlers={"move": on_move},
)
