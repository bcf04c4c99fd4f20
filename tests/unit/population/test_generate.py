"""The synthetic population: shape, determinism, household and age consistency, shares."""

from datetime import date

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from publicmesh.population import (
    DEMO_MUNICIPALITIES,
    SCHEMA,
    check_digit,
    generate,
    generate_frame,
    generate_table,
    municipality,
    summarize,
)

RESIDENTS = 40_000
AS_OF = date(2026, 4, 1)
YEAR_AGO = date(2025, 4, 1)
YEAR = 365.2425


@pytest.fixture(scope="module")
def chunks() -> list[pa.Table]:
    return list(generate(RESIDENTS, seed=11, chunk_size=10_000))


@pytest.fixture(scope="module")
def people(chunks) -> pl.DataFrame:
    frame = pl.from_arrow(pa.concat_tables(chunks))
    return frame.with_columns(
        pl.col(c).cast(pl.String) for c in ("relation", "employment", "pension_kind", "health_insurance")
    ).with_columns(age=_years(pl.lit(AS_OF), pl.col("birth_date")))


def _years(later: pl.Expr, earlier: pl.Expr) -> pl.Expr:
    """Whole calendar years from `earlier` to `later`."""

    def month_day(day: pl.Expr) -> pl.Expr:
        return day.dt.month().cast(pl.Int32) * 100 + day.dt.day().cast(pl.Int32)

    before_birthday = month_day(later) < month_day(earlier)
    return later.dt.year().cast(pl.Int32) - earlier.dt.year().cast(pl.Int32) - before_birthday.cast(pl.Int32)


def _members(people: pl.DataFrame, relation: str) -> pl.DataFrame:
    return people.filter(pl.col("relation") == relation)


def test_schema_and_dense_index(chunks, people):
    assert all(c.schema == SCHEMA for c in chunks)
    assert SCHEMA.names[:4] == ["person_index", "household_id", "relation", "household_size"]
    assert people.height == RESIDENTS
    assert people["person_index"].to_list() == list(range(RESIDENTS))
    assert len(chunks) == 4


def test_households_are_never_split_across_chunks(chunks):
    seen: set[int] = set()
    for chunk in chunks:
        ids = set(chunk.column("household_id").to_pylist())
        assert not ids & seen
        seen |= ids


def test_deterministic_and_independent_of_chunking():
    first = generate_table(25_000, seed=5, chunk_size=10_000)
    again = generate_table(25_000, seed=5, chunk_size=10_000)
    whole = generate_table(25_000, seed=5, chunk_size=1_000_000)

    def ipc(table: pa.Table) -> bytes:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table.combine_chunks())
        return sink.getvalue().to_pybytes()

    assert ipc(first) == ipc(again) == ipc(whole)
    assert not generate_table(25_000, seed=6).equals(first)


def test_one_head_per_household_listed_first(people):
    households = people.group_by("household_id").agg(
        heads=pl.col("relation").is_in(["head", "single"]).sum(),
        first=pl.col("person_index").min(),
        size=pl.len(),
        declared=pl.col("household_size").first(),
        sizes=pl.col("household_size").n_unique(),
        head_index=pl.col("person_index").filter(pl.col("relation").is_in(["head", "single"])).first(),
    )
    assert (households["heads"] == 1).all()
    assert (households["head_index"] == households["household_id"]).all()
    assert (households["first"] == households["household_id"]).all()
    assert (households["size"] == households["declared"]).all() and (households["sizes"] == 1).all()
    assert ((people["relation"] == "single") == (people["household_size"] == 1)).all()


def test_members_share_address_municipality_and_flags(people):
    shared = [
        "address",
        "postal_code",
        "municipality_code",
        "residence_municipality_code",
        "registered",
        "address_protected",
    ]
    spread = people.group_by("household_id").agg(pl.col(c).n_unique() for c in shared)
    for column in shared:
        assert (spread[column] == 1).all(), column
    family = (
        people.filter(pl.col("relation") != "parent")
        .group_by("household_id")
        .agg(pl.col("family_name").n_unique(), pl.col("family_name_kana").n_unique())
    )
    assert (family["family_name"] == 1).all() and (family["family_name_kana"] == 1).all()


def test_ages_are_consistent(people):
    heads = people.filter(pl.col("relation").is_in(["head", "single"]))
    assert heads["age"].min() >= 20 and heads["age"].max() <= 95
    head = heads.select("household_id", head_birth="birth_date")

    spouses = _members(people, "spouse").join(head, on="household_id")
    gap = (spouses["birth_date"] - spouses["head_birth"]).dt.total_days().abs()
    assert gap.max() <= 10 * YEAR + 1
    assert spouses["age"].min() >= 20

    # Every child is at least 18 calendar years younger than each parent, mothers included.
    couple = people.filter(pl.col("relation").is_in(["head", "spouse"])).select(
        "household_id", parent_birth="birth_date", parent_sex="sex"
    )
    children = _members(people, "child").join(couple, on="household_id")
    gaps = children.with_columns(years=_years(pl.col("birth_date"), pl.col("parent_birth")))
    assert gaps["years"].min() >= 18
    assert gaps.filter(pl.col("parent_sex") == 2)["years"].min() >= 18
    assert children["age"].min() >= 0 and children["age"].max() <= 25

    elders = _members(people, "parent").join(head, on="household_id")
    elder_gap = elders.select(years=_years(pl.col("head_birth"), pl.col("birth_date")))["years"]
    assert elder_gap.min() >= 20 and elder_gap.max() <= 40


def test_spouses_are_of_the_other_sex(people):
    head = people.filter(pl.col("relation") == "head").select("household_id", head_sex="sex")
    spouses = _members(people, "spouse").join(head, on="household_id")
    assert (spouses["sex"] != spouses["head_sex"]).all()
    assert set(people["sex"].unique()) == {1, 2}


def test_dates_deaths_and_births(people):
    assert people["birth_date"].max() < AS_OF
    dead = people.filter(pl.col("death_date").is_not_null())
    assert dead["death_date"].min() > YEAR_AGO and dead["death_date"].max() < AS_OF
    assert (dead["death_date"] >= dead["birth_date"]).all()
    assert (people["born_this_year"] == (people["birth_date"] > YEAR_AGO)).all()
    assert 0.005 < dead.height / people.height < 0.015
    assert people["born_this_year"].sum() > 0


def test_scripts_of_names(people):
    for column in ("family_name_kana", "given_name_kana"):
        assert people[column].str.contains(r"^[ァ-ヶー]+$").all()
    for column in ("family_name_romaji", "given_name_romaji"):
        assert people[column].str.contains(r"^[A-Z][a-z]+$").all()
    assert people["family_name"].n_unique() > 100
    assert people["given_name"].n_unique() > 150


def test_municipalities_and_addresses(people):
    codes = set(people["municipality_code"].unique())
    assert codes == set(DEMO_MUNICIPALITIES) and "012084" in codes
    assert all(check_digit(c[:5]) == c[5] for c in codes)
    assert people["postal_code"].str.contains(r"^\d{7}$").all()
    assert people["address"].str.contains(r"(\d+丁目\d+番\d+号|\d+番地\d+)$").all()
    for code in DEMO_MUNICIPALITIES:
        town = municipality(code)
        here = people.filter(pl.col("residence_municipality_code") == code)
        assert here["address"].str.starts_with(town.prefecture + town.name).all()
        assert set(here["postal_code"].unique()) <= {a[0] for a in town.postal_areas}


def test_non_registered_and_protected_shares(people):
    outside = people.filter(~pl.col("registered"))
    inside = people.filter(pl.col("registered"))
    assert 0.004 < outside.height / people.height < 0.02
    assert (outside["municipality_code"] != outside["residence_municipality_code"]).all()
    assert (inside["municipality_code"] == inside["residence_municipality_code"]).all()
    heads = people.filter(pl.col("relation").is_in(["head", "single"]))
    assert 0.0003 < heads["address_protected"].mean() < 0.006


def test_employment_income_and_insurance(people):
    by_job = people.group_by("employment").agg(young=pl.col("age").min(), old=pl.col("age").max())
    ranges = {row["employment"]: (row["young"], row["old"]) for row in by_job.iter_rows(named=True)}
    assert ranges["child"][1] < 6
    assert ranges["student"][0] >= 6 and ranges["student"][1] <= 22
    assert ranges["retired"][0] >= 65
    assert ranges["employee"][0] >= 18 and ranges["employee"][1] < 75
    idle = people.filter(pl.col("employment").is_in(["child", "student"]))
    assert (idle["income"] == 0).all()
    assert ((people["taxable_income"] >= 0) & (people["taxable_income"] <= people["income"])).all()
    employees = people.filter(pl.col("employment") == "employee")
    assert 3_500_000 < employees["income"].mean() < 5_500_000

    employed = people["employment"].is_in(["employee", "employee_uninsured"])
    assert (people["employer_code"].is_not_null() == employed).all()
    for code in people["employer_code"].drop_nulls().unique().to_list()[:500]:
        digits = [int(d) for d in code[1:]][::-1]
        assert len(code) == 13 and int(code[0]) == 9 - sum(d * (1 + i % 2) for i, d in enumerate(digits)) % 9

    pensioned = people.filter(pl.col("pension_monthly") > 0)
    assert pensioned["age"].min() >= 65
    assert pensioned.filter(pl.col("pension_kind") == "national")["pension_monthly"].max() <= 69_308
    employees_pension = pensioned.filter(pl.col("pension_kind") == "employees")["pension_monthly"]
    assert 120_000 < employees_pension.mean() < 180_000
    assert ((people["health_insurance"] == "koki") == (people["age"] >= 75)).all()
    assert (people.filter(pl.col("employment") == "employee")["health_insurance"] == "kyokai").all()

    head_job = people.filter(pl.col("relation") == "head").select("household_id", head_job="employment")
    dependents = people.filter(pl.col("insurance_dependent")).join(head_job, on="household_id")
    assert dependents["relation"].is_in(["spouse", "child"]).all()
    assert (dependents["head_job"] == "employee").all()
    assert (dependents["health_insurance"] == "kyokai").all()


def test_single_municipality_and_as_of():
    frame = generate_frame(3_000, seed=2, municipalities=["011002"], as_of=date(2024, 2, 29))
    assert frame["municipality_code"].unique().to_list() == ["011002"]
    assert frame["registered"].all()
    assert frame["address"].str.starts_with("北海道札幌市").all()
    assert frame["birth_date"].max() < date(2024, 2, 29)


def test_empty_and_invalid_requests():
    assert list(generate(0, seed=1)) == []
    assert generate_frame(0, seed=1).columns == SCHEMA.names
    # Checked at the call, before any chunk is asked for.
    with pytest.raises(ValueError):
        generate(-1, seed=1)
    with pytest.raises(ValueError):
        generate(10, seed=-1)
    with pytest.raises(ValueError):
        generate(10, seed=1, municipalities=["012084", "012084"])
    with pytest.raises(KeyError):
        generate(10, seed=1, municipalities=["012085"])


def test_summary_matches_table(chunks, people):
    summary = summarize(pa.concat_tables(chunks))
    assert summary == summarize(iter(chunks)) == summarize(people.drop("age"))
    assert summary["persons"] == RESIDENTS
    assert summary["households"] == people["household_id"].n_unique()
    assert sum(summary["by_municipality"].values()) == RESIDENTS
    assert summary["deaths"] == people["death_date"].is_not_null().sum()
    assert summary["non_registered"] == (~people["registered"]).sum()
    assert set(summary["by_relation"]) == {"head", "spouse", "child", "parent", "single"}
    assert np.isclose(sum(summary["by_employment"].values()), RESIDENTS)
