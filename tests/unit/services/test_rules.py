import datetime as dt
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from publicmesh.services.rules import RuleError, compile_rules

D = dt.date
DEFINITIONS = Path(__file__).resolve().parents[3] / "publicmesh" / "services" / "definitions"
SCHEMA = {
    "subject": pl.Utf8,
    "household": pl.Utf8,
    "person.family_name": pl.Utf8,
    "person.given_name": pl.Utf8,
    "person.birth_date": pl.Date,
    "person.status": pl.Utf8,
    "household.relation": pl.Utf8,
    "tax.income": pl.Int64,
    "tax.tax_exempt": pl.Boolean,
}


def definition(name: str) -> dict:
    return yaml.safe_load((DEFINITIONS / f"{name}.yaml").read_text(encoding="utf-8"))


def rules_of(name: str):
    doc = definition(name)
    return compile_rules(doc["rules"], doc.get("tables") or {}, doc["as_of"], data=doc["data"])


def person(household, subject, relation, born, status="resident", income=None, given="太郎"):
    return {
        "subject": subject,
        "household": household,
        "person.family_name": "山田",
        "person.given_name": given,
        "person.birth_date": born,
        "person.status": status,
        "household.relation": relation,
        "tax.income": income,
        "tax.tax_exempt": None if income is None else income == 0,
    }


def frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCHEMA).with_columns(
        pl.len().over("household").cast(pl.Int64).alias("household.household_size")
    )


def by_household(decided: pl.DataFrame) -> dict[str, tuple[str, bool, int]]:
    return {r["household"]: (r["subject"], r["eligible"], r["amount"]) for r in decided.iter_rows(named=True)}


# --- Japanese legal age -------------------------------------------------------------------------------------


def ages(born: dt.date, *on: dt.date) -> list[int]:
    rules = compile_rules({"eligible": "True"}, {}, D(2026, 12, 1))
    one = frame([person("h", "a", "single", born)])
    return [one.select(rules.expression(f'age_on(person.birth_date, "{d.isoformat()}")')).item() for d in on]


def test_a_person_is_a_year_older_from_the_day_before_the_birthday():
    # 年齢計算ニ関スル法律: born 1 April 2008, 18 at the end of 31 March 2026 — so in the school year above
    assert ages(D(2008, 4, 1), D(2026, 3, 30), D(2026, 3, 31), D(2026, 4, 1)) == [17, 18, 18]
    assert ages(D(2008, 4, 2), D(2026, 3, 31), D(2026, 4, 1)) == [17, 18]
    assert ages(D(2026, 12, 1), D(2026, 12, 1)) == [0]


def test_a_29_february_birth_ages_at_the_end_of_28_february():
    # 民法第143条第2項: no 29 February in a common year, so the year ends on the month's last day, 28 February
    assert ages(D(2008, 2, 29), D(2027, 2, 27), D(2027, 2, 28), D(2027, 3, 1)) == [18, 19, 19]
    assert ages(D(2008, 2, 29), D(2028, 2, 27), D(2028, 2, 28), D(2028, 2, 29)) == [19, 20, 20]


def age_by_the_civil_code(born: dt.date, on: dt.date) -> int:
    """The law read literally: the k-th year ends the day before the k-th anniversary, or at the end of
    February when that anniversary does not exist."""

    def year_ends(k: int) -> dt.date:
        try:
            return born.replace(year=born.year + k) - dt.timedelta(days=1)
        except ValueError:
            return D(born.year + k, 2, 28)

    k = 0
    while year_ends(k + 1) <= on:
        k += 1
    return k


@settings(max_examples=60, deadline=None)
@given(
    births=st.lists(st.dates(D(1930, 1, 1), D(2030, 12, 31)), min_size=1, max_size=30),
    on=st.dates(D(1930, 1, 1), D(2030, 12, 31)),
)
def test_vectorised_age_agrees_with_the_civil_code_reading(births, on):
    births = [born for born in births if born <= on] or [on]
    rules = compile_rules({"eligible": "True"}, {}, D(2026, 12, 1))
    people = frame([person("h", f"p{i}", "child", born) for i, born in enumerate(births)])
    got = people.select(rules.expression(f'age_on(person.birth_date, "{on}")'))["literal"].to_list()
    assert got == [age_by_the_civil_code(born, on) for born in births]


# --- the language ------------------------------------------------------------------------------------------


def test_operators_functions_and_nulls():
    people = frame(
        [
            person("h", "a", "head", D(1980, 1, 1), income=1_234_567),  # tax_exempt False
            person(
                "h", "b", "spouse", D(1985, 6, 30), status="non-registered"
            ),  # no assessment: income and exempt null
            person("h", "c", "child", D(2015, 3, 3), income=0),  # tax_exempt True
            person("g", "d", "single", D(1950, 5, 5), status="deceased", income=0),
        ]
    )
    rules = compile_rules(
        {
            "let": {
                "minor": "0 <= age(person.birth_date) < 18",
                "present": 'person.status not in ["deceased", "moved-out"]',
                "youngest": "household.min(age(person.birth_date))",
                "oldest_adult": "household.max(age(person.birth_date), where=not minor)",
                "some_exempt": "household.any(tax.tax_exempt)",
                "all_exempt": "household.all(tax.tax_exempt)",  # the unassessed spouse neither counts nor vetoes
                "present_count": "household.count(where=present)",
                "monthly": "coalesce(tax.income, 0) // 12",
                "rest": "coalesce(tax.income, 0) % 1_000",
                "capped": "min(tax.income, 1_000_000)",  # nulls are skipped, as in SQL's LEAST
                "negative": "-coalesce(tax.income, 0)",
                "name": 'person.family_name + " " + person.given_name',
                "taxed": "where(tax.income > 0, 1, 2)",  # a null condition takes the else branch
                "known": "tax.income > 0",  # a comparison with null is null
                "rate": 'table("rates", person.status)',  # no row → null
            },
            "eligible": "known",
            "amount": "tax.income // 1_000",
        },
        {"rates": {"key": ["status"], "rows": [["resident", 7], ["deceased", 0]]}},
        D(2026, 12, 1),
    )
    out = rules.evaluate(people)
    columns = [
        "minor",
        "present",
        "youngest",
        "oldest_adult",
        "some_exempt",
        "all_exempt",
        "present_count",
        "monthly",
        "rest",
        "capped",
        "negative",
        "name",
        "taxed",
        "known",
        "rate",
        "eligible",
        "amount",
    ]
    assert out.select(columns).rows() == [
        (
            False,
            True,
            11,
            46,
            True,
            False,
            3,
            102_880,
            567,
            1_000_000,
            -1_234_567,
            "山田 太郎",
            1,
            True,
            7,
            True,
            1_234,
        ),
        (False, True, 11, 46, True, False, 3, 0, 0, 1_000_000, 0, "山田 太郎", 2, None, None, False, 0),
        (True, True, 11, 46, True, False, 3, 0, 0, 0, 0, "山田 太郎", 2, False, 7, False, 0),
        (False, False, 76, 76, True, True, 0, 0, 0, 0, 0, "山田 太郎", 2, False, 0, False, 0),
    ]
    assert out.schema["eligible"] == pl.Boolean and out.schema["amount"] == pl.Int64


# --- the emergency benefit ----------------------------------------------------------------------------------


def test_the_emergency_benefit_by_household_income():
    people = frame(
        [
            # under ¥2,000,000 together; those without an assessment add nothing; 3 residents → ¥300,000
            person("h1", "a1", "head", D(1980, 5, 5), income=1_200_000),
            person("h1", "a2", "spouse", D(1982, 6, 6)),
            person("h1", "a3", "child", D(2016, 7, 7)),
            # the spouse's ¥800,000 pushes the household to ¥2,300,000: not eligible
            person("h2", "b1", "head", D(1975, 1, 1), income=1_500_000),
            person("h2", "b2", "spouse", D(1976, 1, 1), income=800_000),
            # alone, no assessment at all → income 0
            person("h3", "c1", "single", D(1950, 3, 3)),
            # a deceased member (除票) is not counted in the amount
            person("h4", "d1", "head", D(1960, 4, 4), income=900_000),
            person("h4", "d2", "spouse", D(1961, 4, 4), status="deceased"),
            # exactly ¥2,000,000 is not under the limit
            person("h5", "e1", "single", D(1990, 9, 9), income=2_000_000),
        ]
    )
    decided = by_household(rules_of("emergency-benefit").decide(people, "household"))
    assert {h: v for h, v in decided.items() if v[1]} == {
        "h1": ("a1", True, 300_000),
        "h3": ("c1", True, 100_000),
        "h4": ("d1", True, 100_000),
    }
    assert decided["h2"][1] is False and decided["h5"][1] is False


# --- the child allowance ------------------------------------------------------------------------------------


def test_the_child_allowance_counts_older_children_for_the_birth_order():
    people = frame(
        [
            person("h", "p1", "head", D(1981, 2, 3)),
            person("h", "p2", "spouse", D(1983, 8, 9)),
            person("h", "k20", "child", D(2006, 6, 15)),  # a 20-year-old student
            person("h", "k10", "child", D(2016, 5, 10)),
            person("h", "k5", "child", D(2021, 8, 20)),
            person("h", "k1", "child", D(2025, 9, 1)),
        ]
    )
    rows = {r["subject"]: r for r in rules_of("child-allowance").evaluate(people).iter_rows(named=True)}
    # Birth order counts every child up to the fiscal year of their 22nd birthday, oldest first:
    #   the 20-year-old (19 on 2026-04-01, so counted, but not paid: 18 or over) is 1,
    #   the 10-year-old is 2 → ¥10,000 (second, 3 or over),
    #   the 5-year-old is 3 → ¥30,000 (third or later), the 1-year-old is 4 → ¥30,000 (third or later).
    # Monthly ¥70,000; one payment covers two months: ¥140,000. The parents are not counted at all.
    assert {s: (r["order"], r["monthly"]) for s, r in rows.items()} == {
        "p1": (None, 0),
        "p2": (None, 0),
        "k20": (1, 0),
        "k10": (2, 10_000),
        "k5": (3, 30_000),
        "k1": (4, 30_000),
    }
    assert {r["amount"] for r in rows.values()} == {140_000} and all(r["eligible"] for r in rows.values())


def test_twins_are_ordered_by_pseudonym_whatever_the_row_order():
    people = frame(
        [
            person("h", "z-twin", "child", D(2020, 3, 3)),
            person("h", "parent", "single", D(1988, 1, 1)),
            person("h", "a-twin", "child", D(2020, 3, 3)),
            person("h", "elder", "child", D(2015, 1, 1)),
            person("g", "only", "child", D(2024, 10, 10)),
            person("g", "mother", "head", D(1995, 2, 2)),
        ]
    )
    rules = rules_of("child-allowance")
    for shuffled in (people, people.reverse()):
        rows = {r["subject"]: (r["order"], r["monthly"]) for r in rules.evaluate(shuffled).iter_rows(named=True)}
        assert rows["elder"] == (1, 10_000) and rows["a-twin"] == (2, 10_000) and rows["z-twin"] == (3, 30_000)
        assert rows["only"] == (1, 15_000)  # under 3, first child
    decided = by_household(rules.decide(people, "household"))
    assert decided == {"h": ("parent", True, 100_000), "g": ("mother", True, 30_000)}


def test_form_fields_see_the_whole_household_before_the_head_row_is_picked():
    doc = definition("child-allowance")
    people = frame(
        [
            person("h", "p1", "head", D(1981, 2, 3), given="一郎"),
            person("h", "k1", "child", D(2019, 1, 1)),
            person("h", "k2", "child", D(2021, 1, 1)),
        ]
    )
    fields = {f"form.{f['name']}": f["source"] for f in doc["form"]}
    head = rules_of("child-allowance").decide(people, "household", fields=fields).row(0, named=True)
    assert (head["form.claimant"], head["form.children"], head["form.amount"]) == ("山田 一郎", 2, 40_000)


def test_a_household_without_a_head_is_decided_on_its_smallest_pseudonym():
    people = frame(
        [
            person("h", "m", "child", D(2019, 1, 1)),
            person("h", "k", "parent", D(1950, 1, 1)),
            person("g", "x", "spouse", D(1980, 1, 1)),
            person("g", "y", "head", D(1980, 1, 1)),
            # two heads (bad data): the smaller pseudonym among the heads, not among everyone
            person("t", "a", "child", D(2019, 1, 1)),
            person("t", "r", "head", D(1980, 1, 1)),
            person("t", "q", "head", D(1980, 1, 1)),
        ]
    )
    decided = by_household(rules_of("child-allowance").decide(people, "household"))
    assert {h: row[0] for h, row in decided.items()} == {"h": "k", "g": "y", "t": "q"}
    assert rules_of("child-allowance").decide(people, "person").height == 7
    with pytest.raises(LookupError):
        rules_of("child-allowance").evaluate_one(people, "nobody")


def test_households_whose_keys_hash_alike_are_still_kept_apart(monkeypatch):
    """Aggregates group by a hash of the household key; were two keys to hash alike, the households would be
    merged, so the id falls back to the key's rank. Forced here by a hash that gives every key the same value."""
    people = frame(
        [
            person("h1", "a1", "head", D(1980, 5, 5), income=1_900_000),
            person("h2", "b1", "head", D(1975, 1, 1), income=1_900_000),
        ]
    )
    honest = by_household(rules_of("emergency-benefit").decide(people, "household"))
    monkeypatch.setattr(pl.Series, "hash", lambda self, *a, **k: pl.Series(self.name, [7] * len(self), pl.UInt64))
    colliding = by_household(rules_of("emergency-benefit").decide(people, "household"))
    assert colliding == honest == {"h1": ("a1", True, 100_000), "h2": ("b1", True, 100_000)}


def test_every_shipped_definition_and_form_source_compiles():
    for path in sorted(DEFINITIONS.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        rules = compile_rules(doc["rules"], doc.get("tables") or {}, doc["as_of"], data=doc["data"])
        for field in doc.get("form", []):
            assert isinstance(rules.expression(field["source"]), pl.Expr)


# --- errors point at the place --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, at, says",
    [  # at: the text the column points to (None: the end)
        ("person.status == 'resident' and chlid", "chlid", "unknown name 'chlid'; available: counted, child"),
        ("1.5 * household.count()", "1.5", "integer yen"),
        ("household.sum(tax.income) / 12", "/", "use `//`"),
        ("household.median(tax.income) > 0", "household.median", "unknown function household.median(); available:"),
        ("person.status == ", None, "syntax error"),
        ("   person.status == 'resident' and (", "(", "syntax error: '(' was never closed"),
        ("person.status == = 'resident'", "= '", "syntax error"),
        ('person.given_name == "太郎" and stauts', "stauts", "unknown name 'stauts'"),
        ("tax.income > 0 # hmm", "#", "comments belong in the YAML"),
        ("tax.salary > 0", "tax.salary", "tax has: tax.fiscal_year, tax.income, tax.tax_exempt"),
        ("open('/etc/passwd')", "open", "unknown function open()"),
        ("person.status.__class__", "person", "attribute access"),
        ("[x for x in person.status]", "[", "comprehension"),
        ("where(counted, 1)", "where", "where() takes 3 arguments, not 2"),
        ('table("monthly", True)', '"monthly"', "unknown table 'monthly'; available: monthly_by_order_and_age"),
        ('table("monthly_by_order_and_age", True)', "table", "give 2 key values, not 1"),
        ("household.count(when=counted)", "when", "does not take when="),
        ('age_on(person.birth_date, "2026-02-30") < 18', '"2026', "is not a date"),
        ("person.status is None", "person", "`is` is not part"),
    ],
)
def test_rule_errors_name_the_expression_and_the_column(text, at, says):
    doc = definition("child-allowance")
    rules = {
        "let": {"counted": doc["rules"]["let"]["counted"], "child": doc["rules"]["let"]["child"]},
        "eligible": text,
    }
    data = {**doc["data"], "tax": definition("emergency-benefit")["data"]["tax"]}
    with pytest.raises(RuleError) as caught:
        compile_rules(rules, doc["tables"], doc["as_of"], data=data)
    error = caught.value
    assert says in error.message and error.expression == text and error.rule == "rules.eligible"
    assert error.column == (len(text.rstrip()) if at is None else text.index(at))
    assert str(error).endswith(" " * (4 + error.column) + "^")


def test_type_errors_are_found_against_the_frame_with_a_column():
    people = frame([person("h", "a", "single", D(1980, 1, 1), income=10)])
    as_of = D(2026, 12, 1)
    with pytest.raises(RuleError, match="and needs a boolean, not Int64") as caught:
        compile_rules({"eligible": "tax.income and True"}, {}, as_of).evaluate(people)
    assert caught.value.column == 0
    with pytest.raises(RuleError, match=r"age\(\) needs a date") as caught:
        compile_rules({"eligible": "age(person.status) > 3"}, {}, as_of).evaluate(people)
    assert caught.value.column == 4
    with pytest.raises(RuleError, match="the data has no tax.assessed; it has: person.family_name"):
        compile_rules({"eligible": "tax.assessed"}, {}, as_of).evaluate(people)
    with pytest.raises(RuleError, match="the result must be a boolean"):
        compile_rules({"eligible": "tax.income"}, {}, as_of).evaluate(people)


def test_an_amount_that_is_not_integer_yen_is_refused():
    people = frame([person("h", "a", "single", D(1980, 1, 1))]).with_columns(pl.lit(0.5).alias("tax.rate"))
    with pytest.raises(RuleError, match="integer yen") as caught:
        compile_rules({"eligible": "True", "amount": "100_000 * tax.rate"}, {}, D(2026, 12, 1)).evaluate(people)
    assert caught.value.rule == "rules.amount"
    with pytest.raises(RuleError, match="integer yen"):
        compile_rules(
            {"eligible": "True", "amount": "table('t', 1)"}, {"t": {"key": ["k"], "rows": [[1, 0.5]]}}, D(2026, 12, 1)
        )


def test_let_names_may_not_shadow_keys_sources_or_functions():
    for name in ("amount", "household", "person", "where", "not a name"):
        with pytest.raises(RuleError, match=repr(name)):
            compile_rules(
                {"let": {name: "1"}, "eligible": "True"},
                {},
                D(2026, 12, 1),
                data={"person": {"attributes": ["status"]}},
            )
    with pytest.raises(RuleError, match="unknown name 'later'"):
        compile_rules({"let": {"early": "later", "later": "1"}, "eligible": "True"}, {}, D(2026, 12, 1))


# --- bulk and one person agree --------------------------------------------------------------------------------

TWINS_AND_EDGES = [D(2008, 2, 29), D(2020, 4, 1), D(2020, 4, 2), D(2024, 2, 29), D(2004, 4, 2)]
MEMBER = st.tuples(
    st.one_of(
        st.dates(D(1935, 1, 1), D(2003, 12, 31)),
        st.dates(D(2003, 1, 1), D(2026, 12, 1)),
        st.sampled_from(TWINS_AND_EDGES),
        st.sampled_from(TWINS_AND_EDGES[1:3]),
    ),
    st.sampled_from(["resident"] * 5 + ["moved-out", "deceased", "non-registered"]),
    st.none() | st.integers(0, 1_500_000),
)


@pytest.mark.parametrize("service", ["emergency-benefit", "child-allowance"])
@settings(max_examples=25, deadline=None)
@given(households=st.lists(st.lists(MEMBER, min_size=1, max_size=6), min_size=1, max_size=4), data=st.data())
def test_bulk_evaluation_equals_the_portals_one_household_evaluation(service, households, data):
    rows = []
    for h, members in enumerate(households):
        pseudonyms = data.draw(st.permutations(range(len(members))))  # unrelated to row order: ties are real
        for i, (born, status, income) in enumerate(members):
            relation = ("single" if len(members) == 1 else "head") if i == 0 else ["spouse", "child", "parent"][i % 3]
            rows.append(person(f"h{h}", f"p{h}-{pseudonyms[i]}", relation, born, status, income))
    people = frame(rows)
    shuffled = people.sample(fraction=1.0, shuffle=True, seed=data.draw(st.integers(0, 2**32 - 1)))
    rules = rules_of(service)
    bulk = {r["subject"]: r for r in rules.evaluate(shuffled).iter_rows(named=True)}
    for subject in people["subject"]:
        assert rules.evaluate_one(people, subject) == bulk[subject]


# --- scale ------------------------------------------------------------------------------------------------------


def synthetic_population(n: int, seed: int = 7) -> pl.DataFrame:
    """n persons in households of 1–6, built with numpy: no Python loop over persons."""
    rng = np.random.default_rng(seed)
    sizes = rng.choice([1, 2, 3, 4, 5, 6], size=n, p=[0.35, 0.3, 0.15, 0.12, 0.05, 0.03])
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n)]
    sizes = np.append(sizes, n - sizes.sum()) if sizes.sum() < n else sizes
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    position = np.arange(n) - starts
    alone = np.repeat(sizes, sizes) == 1
    relation = np.where(position == 0, np.where(alone, "single", "head"), np.where(position == 1, "spouse", "child"))
    born = np.where(position < 2, rng.integers(-12_000, 5_000, n), rng.integers(9_000, 20_600, n))  # days since 1970
    income = pl.Series(rng.integers(0, 4_000_000, n)).scatter(np.flatnonzero(rng.random(n) < 0.3), None)
    return pl.DataFrame(
        {
            "subject": pl.Series(rng.permutation(n)).cast(pl.Utf8),
            "household": pl.Series(starts).cast(pl.Utf8),
            "person.family_name": "山田",
            "person.given_name": "花子",
            "person.birth_date": pl.Series(born.astype(np.int32)).cast(pl.Date),
            "person.status": np.where(rng.random(n) < 0.97, "resident", "moved-out"),
            "household.relation": relation,
            "household.household_size": pl.Series(np.repeat(sizes, sizes)),
            "tax.income": income,
            "tax.tax_exempt": rng.random(n) < 0.2,
        }
    ).sample(fraction=1.0, shuffle=True, seed=seed)  # a municipality's frame arrives in no household order


def test_a_million_persons_are_decided_in_seconds(capsys):
    people = synthetic_population(1_000_000)
    households = people["household"].n_unique()
    rules = rules_of("child-allowance")
    started = time.perf_counter()
    decided = rules.decide(people, "household")
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n[rules] 1,000,000 persons: {elapsed:.2f}s (child-allowance, {households:,} households)")
    assert decided.height == households == decided["household"].n_unique()
    assert decided["amount"].min() >= 0 and decided.filter(pl.col("eligible"))["amount"].min() >= 20_000
