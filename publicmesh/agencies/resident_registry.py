"""Resident registry (住民基本台帳), one tenant per municipality: persons, households, addresses,
moves, births, deaths, address protection (DV等支援措置) and non-registered residents (住登外者)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    func,
    insert,
    select,
    update,
)

from publicmesh.protocol.bulk_wire import as_rows_of_answer
from publicmesh.provider.datasets import SCAN_OVER, Attribute, Dataset, rows_table, small_types
from publicmesh.provider.definition import AgencyDefinition
from publicmesh.provider.messaging import emit
from publicmesh.provider.reads import StoreReads
from publicmesh.storage import columnar

if TYPE_CHECKING:  # Polars is imported where it is used: a part that never reads in bulk does not load it
    import polars as pl  # noqa: PLC0415 (heavy: see the TYPE_CHECKING import)

metadata = MetaData()
residents = Table(
    "residents",
    metadata,
    Column("tenant", String(6), primary_key=True),
    Column("pseudonym", String(22), primary_key=True),
    Column("household_no", BigInteger, nullable=False, index=True),
    Column("relation", String(8), nullable=False),
    Column("family_name", String(32), nullable=False),
    Column("given_name", String(32), nullable=False),
    Column("family_name_kana", String(64), nullable=False),
    Column("given_name_kana", String(64), nullable=False),
    Column("family_name_romaji", String(64), nullable=False),
    Column("given_name_romaji", String(64), nullable=False),
    Column("sex", SmallInteger, nullable=False),
    Column("birth_date", Date, nullable=False),
    Column("death_date", Date),
    Column("status", String(16), nullable=False),  # resident, deceased, moved-out, non-registered
    Column("postal_code", String(7), nullable=False),
    Column("address", String(160), nullable=False),
    Column("residence_municipality_code", String(6), nullable=False),
    Column("address_protected", Boolean, nullable=False, default=False),
    Column("updated_at", DateTime(timezone=True), server_default=func.now()),
    sqlite_with_rowid=False,  # a municipality's rows together, in pseudonym order: see layout
)
Index("residents_pseudonym", residents.c.pseudonym)
moves = Table(
    "moves",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("tenant", String(6), nullable=False),
    Column("pseudonym", String(22), nullable=False, index=True),
    Column("moved_on", Date, nullable=False),
    Column("from_address", String(160), nullable=False),
    Column("to_address", String(160), nullable=False),
    Column("to_postal_code", String(7), nullable=False),
)

_STR = {"type": "string"}
_DATE = {"type": "string", "format": "date"}
PERSON = Dataset(
    "person",
    "基本4情報等",
    "Basic resident information",
    (
        Attribute("family_name", _STR, "氏", "Family name", "identity"),
        Attribute("given_name", _STR, "名", "Given name", "identity"),
        Attribute("family_name_kana", _STR, "氏（フリガナ）", "Family name (kana)", "identity"),
        Attribute("given_name_kana", _STR, "名（フリガナ）", "Given name (kana)", "identity"),
        Attribute("family_name_romaji", _STR, "氏（ローマ字）", "Family name (romaji)", "identity"),
        Attribute("given_name_romaji", _STR, "名（ローマ字）", "Given name (romaji)", "identity"),
        Attribute(
            "sex", {"type": "integer", "enum": [1, 2]}, "性別（1 男 2 女）", "Sex (1 male, 2 female)", "identity"
        ),
        Attribute("birth_date", _DATE, "生年月日", "Date of birth", "identity"),
        Attribute(
            "status",
            {"type": "string", "enum": ["resident", "deceased", "moved-out", "non-registered"]},
            "住民の状態",
            "Registration status",
        ),
        Attribute("death_date", {"type": ["string", "null"], "format": "date"}, "死亡日", "Date of death"),
    ),
    table=residents,
    protected_column="address_protected",
)
ADDRESS = Dataset(
    "address",
    "住所",
    "Address",
    (
        Attribute("postal_code", {"type": "string", "pattern": "^[0-9]{7}$"}, "郵便番号", "Postal code", "address"),
        Attribute("address", _STR, "住所", "Address", "address"),
        Attribute(
            "residence_municipality_code",
            {"type": "string", "pattern": "^[0-9]{6}$"},
            "居住地の地方公共団体コード",
            "Municipality of residence",
            "address",
        ),
    ),
    table=residents,
    protected_column="address_protected",
)


REGISTERED = ("resident", "non-registered")  # the statuses counted as members of a household
HEADS = ("head", "single")  # a person living alone heads their own household


def _household_lookup(conn: Connection, tenant, subjects, attributes) -> dict[str, dict]:
    r = residents.c
    columns = (r.pseudonym, r.household_no, r.relation, r.address_protected, r.sex, r.birth_date, r.status)
    in_order = (r.household_no, r.birth_date, r.pseudonym)  # twins: the same order whatever the plan
    if len(subjects) > SCAN_OVER:  # most of the municipality: one scan serves the subjects and their households
        wanted = set(subjects)
        everyone = list(conn.execute(select(*columns).where(r.tenant == tenant).order_by(*in_order)))
        found = {row.pseudonym: row for row in everyone if row.pseudonym in wanted}
        numbers = {row.household_no for row in found.values()}
        member_rows = [row for row in everyone if row.household_no in numbers]
    else:
        found = {
            row.pseudonym: row
            for row in conn.execute(select(*columns).where(r.tenant == tenant, r.pseudonym.in_(list(subjects))))
        }
        numbers = sorted({row.household_no for row in found.values()})
        member_rows = (
            list(
                conn.execute(
                    select(*columns).where(r.tenant == tenant, r.household_no.in_(numbers)).order_by(*in_order)
                )
            )
            if numbers
            else []
        )
    members: dict[int, list[dict]] = {}
    for row in member_rows:
        if row.status in REGISTERED:
            members.setdefault(row.household_no, []).append(
                {
                    "subject": row.pseudonym,
                    "relation": row.relation,
                    "sex": row.sex,
                    "birth_date": row.birth_date.isoformat(),
                }
            )
    out = {}
    for subject, row in found.items():
        household = members.get(row.household_no, [])
        full = {
            "relation": row.relation,
            "household_size": len(household),
            "members": household,
            "head": head_of(household),
        }
        out[subject] = {"_protected": bool(row.address_protected), **{a: full[a] for a in attributes}}
    return out


def head_of(members: list[dict]) -> str | None:
    """世帯主: the registered head; without one (moved out, died), the oldest member, then the smallest pseudonym.
    Members come oldest first, so a newborn joining never changes it."""
    named = next((m["subject"] for m in members if m["relation"] in HEADS), None)
    return named or (members[0]["subject"] if members else None)


def _household_bulk(
    conn: Connection, tenant, subjects, attributes, wire: bool = False, *, reads: StoreReads
) -> pa.Table:
    """Most of a municipality: one scan, the members of each household grouped in Polars (the same members, in
    the same order, and the same head, as _household_lookup gives one household)."""
    import polars as pl  # noqa: PLC0415 — on first use, as said above

    if (subjects is not None and len(subjects) <= SCAN_OVER) or not columnar.supports(conn.engine):
        # a few households, or an in-memory SQLite (no second connection sees it)
        subjects = HOUSEHOLD.all_subjects(conn, tenant) if subjects is None else subjects
        return rows_table(_household_lookup(conn, tenant, subjects, attributes), attributes)
    sex = ["sex"] if "members" in attributes else []  # only the member lists show it
    # read once with the person scan asked at the same moment (StoreReads.tenant_rows); let go once Polars holds it
    everyone = pl.from_arrow(
        reads.tenant_rows(
            conn,
            residents,
            "tenant",
            tenant,
            ["pseudonym", "household_no", "relation", "address_protected", *sex, "birth_date", "status"],
        )
    ).rename({"pseudonym": "subject", "address_protected": "protected"})
    if everyone.schema["birth_date"] != pl.Utf8:  # PostgreSQL gives dates, SQLite their ISO text
        everyone = everyone.with_columns(pl.col("birth_date").dt.to_string("%Y-%m-%d"))
    # The answer keeps the order read (the store's), the same as a scan of person gives, so the hub converts and
    # records those residents once for both. A scan answers every resident, heads included, so there the head is
    # given as the row of the answer that is the head (bulk_wire.as_rows_of_answer): the hub converts nobody twice.
    rows_of_heads = wire and subjects is None and "head" in attributes
    households = _households(everyone.with_row_index("row") if rows_of_heads else everyone, attributes)
    asked = None if subjects is None else pl.Series(subjects, dtype=pl.Utf8).implode()
    found = everyone if asked is None else everyone.filter(pl.col("subject").is_in(asked))
    answer = found.join(households, on="household_no", how="left", maintain_order="left").with_columns(
        pl.col("protected").cast(pl.Boolean).fill_null(False).alias("_protected")
    )
    if "household_size" in attributes:
        answer = answer.with_columns(pl.col("household_size").fill_null(0))
    if "members" in attributes:
        answer = answer.with_columns(pl.col("members").fill_null([]))
    table = small_types(answer.select("subject", "_protected", *attributes).to_arrow())
    return as_rows_of_answer(table, "head") if rows_of_heads else table


def _households(everyone, attributes):
    """Per household_no its head (its row number instead, where ``everyone`` has a column row), size and (when asked)
    member lists, from the members in the order _household_lookup gives them (the sorted copy is let go before the
    answer is built)."""
    import polars as pl  # noqa: PLC0415 — on first use, as said above

    # Only what was asked is built: the member lists are the costly part, and a service keyed by the head (世帯主)
    # asks for relation and head alone.
    named = "row" if "row" in everyone.columns else "subject"  # the head's row of the answer, or its pseudonym
    registered = everyone.filter(pl.col("status").is_in(REGISTERED))
    if "members" not in attributes:
        return _heads_and_sizes(registered, named, "household_size" in attributes)
    grouped = [
        pl.coalesce(pl.col(named).filter(pl.col("relation").is_in(HEADS)).first(), pl.col(named).first()).alias("head"),
        pl.len().cast(pl.Int64).alias("household_size"),
        pl.struct("subject", "relation", pl.col("sex").cast(pl.Int64), "birth_date").alias("members"),
    ]
    return (
        registered.sort("household_no", "birth_date", "subject")
        .group_by("household_no", maintain_order=True)
        .agg(grouped)
    )


def _heads_and_sizes(registered, named: str, sizes: bool):
    """head_of and (``sizes``) the size of every household without ordering its members: a household with one
    registered head (nearly all) has that head; only the others are ordered (oldest first, then by pseudonym) to
    choose as head_of does."""
    import polars as pl  # noqa: PLC0415 — on first use, as said above

    heads = (
        registered.filter(pl.col("relation").is_in(HEADS))
        .group_by("household_no")
        .agg(pl.col(named).first().alias("head"), pl.len().alias("heads"))
    )
    clear = heads.filter(pl.col("heads") == 1).drop("heads")
    unclear = registered.join(clear, on="household_no", how="anti")
    chosen = (
        unclear.sort("household_no", "birth_date", "subject")
        .group_by("household_no", maintain_order=True)
        .agg(
            pl.coalesce(pl.col(named).filter(pl.col("relation").is_in(HEADS)).first(), pl.col(named).first()).alias(
                "head"
            )
        )
    )
    found = pl.concat([clear, chosen.cast({"head": clear.schema["head"]})])
    if not sizes:  # (the answer's join fills household_size in with 0: it is not asked)
        return found
    counted = registered.group_by("household_no").agg(pl.len().cast(pl.Int64).alias("household_size"))
    return counted.join(found, on="household_no", how="left")


HOUSEHOLD = Dataset(
    "household",
    "世帯情報",
    "Household",
    (
        Attribute(
            "relation",
            {"type": "string", "enum": ["head", "spouse", "child", "parent", "single"]},
            "世帯主との続柄",
            "Relation to the head of household",
            "household",
        ),
        Attribute("household_size", {"type": "integer", "minimum": 0}, "世帯人員", "Household size", "household"),
        Attribute(
            "members",
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "subject": {"type": "string", "format": "pseudonym"},
                        "relation": _STR,
                        "sex": {"type": "integer"},
                        "birth_date": _DATE,
                    },
                },
            },
            "世帯員",
            "Household members",
            "household",
        ),
        Attribute("head", {"type": "string", "format": "pseudonym"}, "世帯主", "Head of household", "household"),
    ),
    custom_lookup=_household_lookup,
    custom_bulk=_household_bulk,
    scan_table=residents,
)


def seed(chunk: pl.DataFrame, pseudonyms) -> dict[Table, pl.DataFrame]:
    import polars as pl  # noqa: PLC0415 — on first use, as said above

    rows = chunk.with_columns(pl.Series("pseudonym", pseudonyms)).select(
        pl.col("municipality_code").alias("tenant"),
        "pseudonym",
        pl.col("household_id").alias("household_no"),
        "relation",
        "family_name",
        "given_name",
        "family_name_kana",
        "given_name_kana",
        "family_name_romaji",
        "given_name_romaji",
        "sex",
        "birth_date",
        "death_date",
        pl.when(pl.col("death_date").is_not_null())
        .then(pl.lit("deceased"))
        .when(~pl.col("registered"))
        .then(pl.lit("non-registered"))
        .otherwise(pl.lit("resident"))
        .alias("status"),
        "postal_code",
        "address",
        "residence_municipality_code",
        "address_protected",
    )
    return {residents: rows}


def _member(tenant: str) -> str:
    return f"MUNI/{tenant}/resident-registry"


def _person(conn: Connection, tenant: str, pseudonym: str):
    row = conn.execute(
        select(residents).where(residents.c.tenant == tenant, residents.c.pseudonym == pseudonym)
    ).first()
    if row is None:
        raise LookupError(f"no resident {pseudonym} in {tenant}")
    return row


def register_birth(
    conn: Connection,
    tenant: str,
    child: str,
    mother: str,
    given_name: str,
    given_name_kana: str,
    given_name_romaji: str,
    sex: int,
    born_on: dt.date,
) -> None:
    """出生届: the child joins the mother's household; the event names both parents' pseudonyms."""
    m = _person(conn, tenant, mother)
    conn.execute(
        insert(residents).values(
            tenant=tenant,
            pseudonym=child,
            household_no=m.household_no,
            relation="child",
            family_name=m.family_name,
            given_name=given_name,
            family_name_kana=m.family_name_kana,
            given_name_kana=given_name_kana,
            family_name_romaji=m.family_name_romaji,
            given_name_romaji=given_name_romaji,
            sex=sex,
            birth_date=born_on,
            status="resident",
            postal_code=m.postal_code,
            address=m.address,
            residence_municipality_code=tenant,
            address_protected=m.address_protected,
        )
    )
    parents = [
        r.pseudonym
        for r in conn.execute(
            select(residents.c.pseudonym).where(
                residents.c.tenant == tenant,
                residents.c.household_no == m.household_no,
                residents.c.relation.in_(["head", "spouse", "single"]),
                residents.c.status == "resident",
            )
        )
    ]
    if mother not in parents:
        parents.append(mother)
    emit(
        conn,
        AGENCY.outbox,
        _member(tenant),
        "birth",
        child,
        {"birth_date": born_on.isoformat(), "sex": sex, "parents": parents, "municipality_code": tenant},
    )


def register_move(
    conn: Connection, tenant: str, pseudonym: str, postal_code: str, address: str, moved_on: dt.date
) -> None:
    """転居 within the municipality: the whole household moves; one event per member."""
    p = _person(conn, tenant, pseudonym)
    household = conn.execute(
        select(residents.c.pseudonym, residents.c.address).where(
            residents.c.tenant == tenant, residents.c.household_no == p.household_no, residents.c.status == "resident"
        )
    ).all()
    for member in household:
        conn.execute(
            insert(moves).values(
                tenant=tenant,
                pseudonym=member.pseudonym,
                moved_on=moved_on,
                from_address=member.address,
                to_address=address,
                to_postal_code=postal_code,
            )
        )
        conn.execute(
            update(residents)
            .where(residents.c.tenant == tenant, residents.c.pseudonym == member.pseudonym)
            .values(postal_code=postal_code, address=address, updated_at=func.now())
        )
        emit(
            conn,
            AGENCY.outbox,
            _member(tenant),
            "move",
            member.pseudonym,
            {
                "postal_code": postal_code,
                "address": address,
                "moved_on": moved_on.isoformat(),
                "municipality_code": tenant,
                "protected": bool(p.address_protected),
            },
        )


def register_death(conn: Connection, tenant: str, pseudonym: str, died_on: dt.date) -> None:
    """死亡届: the record stays as 除票 with status deceased."""
    _person(conn, tenant, pseudonym)
    conn.execute(
        update(residents)
        .where(residents.c.tenant == tenant, residents.c.pseudonym == pseudonym)
        .values(status="deceased", death_date=died_on, updated_at=func.now())
    )
    emit(
        conn,
        AGENCY.outbox,
        _member(tenant),
        "death",
        pseudonym,
        {"death_date": died_on.isoformat(), "municipality_code": tenant},
    )


AGENCY = AgencyDefinition(
    system="resident-registry",
    title_ja="住民基本台帳",
    title_en="Resident registry",
    metadata=metadata,
    datasets={d.name: d for d in (PERSON, ADDRESS, HOUSEHOLD)},
    seed=seed,
)
