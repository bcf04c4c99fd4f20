"""A definition's `rules:` compiled once, then evaluated over one frame per municipality (bulk, at publish)
or over one household (the portal) with the same expressions, so both always agree."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from publicmesh.services.rules.compiler import FUNCTIONS, Compiled, Scope, compile_expression
from publicmesh.services.rules.errors import RuleError
from publicmesh.services.rules.functions import HOUSEHOLD, SUBJECT, UNIT, Table, with_unit

Frame = pl.DataFrame | pl.LazyFrame
HEADS = ("head", "single")  # household.relation values of the row that applies for, and is paid for, a household
_RESERVED = {SUBJECT, HOUSEHOLD, UNIT, "eligible", "amount", *FUNCTIONS}
_WANTS = {
    "boolean": lambda t: t in (pl.Boolean, pl.Null),
    "date": lambda t: t == pl.Date or t == pl.Datetime,
    "integer": lambda t: t.is_integer() or t == pl.Null,
}


@dataclass(frozen=True)
class Rule:
    """One named expression that becomes a column: a `let` value, eligible, amount or a form field."""

    name: str
    label: str  # where it is written in the definition, for errors: rules.let.order, rules.amount, form
    compiled: Compiled
    wants: str | None = None  # the type of the result, when it matters

    def add_to(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """The frame with this rule's column, once the frame's schema confirmed every name and type it uses."""
        text, schema = self.compiled.text, frame.collect_schema()
        for column, at in self.compiled.columns.items():
            if column not in schema:
                available = ", ".join(c for c in schema.names() if "." in c)
                raise RuleError(f"the data has no {column}; it has: {available}", text, at, self.label)
        for check, dtype in zip(self.compiled.checks, self._check_types(frame)):
            if not _WANTS[check.wants](dtype):
                raise RuleError(f"{check.what} needs a {check.wants}, not {dtype}", text, check.column, self.label)
        result = self._type_of(frame, self.compiled.expr, None)
        if self.wants == "integer" and result.is_float():
            raise RuleError(f"the amount is {result}: money is integer yen (use // and integers)", text, 0, self.label)
        if self.wants and not _WANTS[self.wants](result):
            raise RuleError(f"the result must be a {self.wants}, not {result}", text, 0, self.label)
        return frame.with_columns(self.compiled.expr.alias(self.name))

    def _check_types(self, frame: pl.LazyFrame) -> list[pl.DataType]:
        """The types of the checked parts; when Polars cannot type them together, the first (innermost) part
        it cannot type is reported, with its column."""
        checks = self.compiled.checks
        try:
            return frame.select([c.expr.alias(f"_{i}") for i, c in enumerate(checks)]).collect_schema().dtypes()
        except pl.exceptions.PolarsError:
            return [self._type_of(frame, c.expr, c.column) for c in checks]

    def _type_of(self, frame: pl.LazyFrame, expr: pl.Expr, column: int | None) -> pl.DataType:
        try:
            return frame.select(expr.alias("_")).collect_schema()["_"]
        except pl.exceptions.PolarsError as e:
            raise RuleError(f"cannot be evaluated: {_first_line(e)}", self.compiled.text, column, self.label) from None


def compile_rules(
    rules: Mapping, tables: Mapping | None, as_of: dt.date, *, data: Mapping | None = None
) -> CompiledRules:
    """Compile a definition's rules; with its `data:` section, every source.attribute is checked now rather
    than when a municipality's frame arrives."""
    if not isinstance(rules, Mapping):
        raise RuleError("rules must be a mapping with let:, eligible: and amount:", rule="rules")
    unknown = set(rules) - {"let", "eligible", "amount"}
    if unknown:
        raise RuleError(f"unknown keys {sorted(unknown)}; rules have let:, eligible: and amount:", rule="rules")
    if "eligible" not in rules:
        raise RuleError("eligible: is required", rule="rules")
    scope = Scope(
        as_of,
        {str(n): Table.parse(str(n), spec) for n, spec in (tables or {}).items()},
        sources=None if data is None else _sources(data),
    )
    if not isinstance(rules.get("let") or {}, Mapping):
        raise RuleError("let: is a mapping of names to expressions, in order", rule="rules.let")
    lets = []
    for name, text in (rules.get("let") or {}).items():
        _check_let_name(str(name), scope)
        lets.append(_rule(str(name), f"rules.let.{name}", text, scope))
        scope = scope.naming(str(name))
    eligible = _rule("eligible", "rules.eligible", rules["eligible"], scope, "boolean")
    amount = _rule("amount", "rules.amount", rules.get("amount", 0), scope, "integer")
    return CompiledRules(tuple(lets), eligible, amount, scope.naming("eligible", "amount"))


def _rule(name: str, label: str, text, scope: Scope, wants: str | None = None) -> Rule:
    try:
        return Rule(name, label, compile_expression(text, scope), wants)
    except RuleError as e:
        raise e.within(label) from None


def _sources(data: Mapping) -> dict[str, frozenset[str]]:
    """source → attributes, from a definition's data: (each source a mapping with attributes:, or a list)."""
    return {
        str(source): frozenset(spec.get("attributes", []) if isinstance(spec, Mapping) else spec)
        for source, spec in data.items()
    }


def _check_let_name(name: str, scope: Scope) -> None:
    problem = None
    if not name.isidentifier() or name in ("True", "False", "None"):
        problem = "is not a name a rule can refer to"
    elif name in _RESERVED:
        problem = "is reserved"
    elif name in scope.names:
        problem = "is defined twice"
    elif scope.sources and name in scope.sources:
        problem = "is a data source"
    if problem:
        raise RuleError(f"{name!r} {problem}", rule=f"rules.let.{name}")


@dataclass(frozen=True)
class CompiledRules:
    """The compiled `let`, `eligible` and `amount`, and the scope form sources are compiled in."""

    lets: tuple[Rule, ...]
    eligible: Rule
    amount: Rule
    form_scope: Scope

    def expression(self, source) -> pl.Expr:
        """A form field's `source:` as an expression over an evaluated frame (may use lets, eligible, amount).
        Household aggregates need the whole household: pass fields to evaluate() or decide() for those."""
        return self._field("form", "form", source).compiled.expr

    def field(self, name: str, source) -> Rule:
        """A form field's `source:` compiled (what it reads, whether it aggregates over the household)."""
        return self._field(name, f"form.{name}", source)

    def evaluate(self, frame: Frame, fields: Mapping[str, str] | None = None) -> pl.DataFrame:
        """The frame with a column per `let`, eligible (Boolean, null → False) and amount (Int64 yen, null → 0),
        and one per form field (column name → source) if given."""
        return _collect(self.plan(frame, fields)).drop(UNIT)

    def plan(self, frame: Frame, fields: Mapping[str, str] | None = None) -> pl.LazyFrame:
        """The evaluation as a lazy frame, with the household id column (UNIT) the aggregates group by."""
        names = frame.collect_schema().names()
        missing = [k for k in (SUBJECT, HOUSEHOLD) if k not in names]
        if missing:
            raise ValueError(f"the frame needs the key columns subject and household (missing: {missing})")
        frame = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
        lazy = with_unit(frame).lazy()
        for rule in (*self.lets, self.eligible, self.amount):
            lazy = rule.add_to(lazy)
        lazy = lazy.with_columns(pl.col("eligible").fill_null(False), pl.col("amount").cast(pl.Int64).fill_null(0))
        for name, source in (fields or {}).items():
            lazy = self._field(name, f"form.{name}", source).add_to(lazy)
        return lazy

    def decide(self, frame: Frame, unit: str, fields: Mapping[str, str] | None = None) -> pl.DataFrame:
        """One row per unit: every person, or per household the row of its head (世帯主) — or, when the data
        names no head (or several), the member with the smallest pseudonym, so the choice stays deterministic."""
        if unit == "person":
            return self.evaluate(frame, fields)
        if unit != "household":
            raise ValueError(f"unknown unit {unit!r}: person or household")
        if "household.relation" not in frame.lazy().collect_schema():
            raise ValueError("household decisions need household.relation to find the head of each household")
        return _head_rows(_collect(self.plan(frame, fields))).drop(UNIT)

    def evaluate_one(self, frame: Frame, subject: str, fields: Mapping[str, str] | None = None) -> dict:
        """The person's row, computed only over the rows of their household — what the portal shows."""
        lazy = frame.lazy()
        theirs = lazy.filter(pl.col(SUBJECT) == subject).select(HOUSEHOLD).unique()
        household = lazy.join(theirs, on=HOUSEHOLD, how="semi")
        rows = _collect(self.plan(household, fields).filter(pl.col(SUBJECT) == subject)).drop(UNIT)
        if rows.height == 0:
            raise LookupError(f"no person {subject!r} in the frame")
        return rows.row(0, named=True)

    def _field(self, name: str, label: str, source) -> Rule:
        try:
            return Rule(name, label, compile_expression(source, self.form_scope))
        except RuleError as e:
            raise e.within(label) from None


def _head_rows(evaluated: pl.DataFrame) -> pl.DataFrame:
    """Almost every household has exactly one head and is settled by a cheap test; only the others (a head
    moved out, or bad data with two) pay for comparing pseudonyms, heads first, among their own rows. The rows
    are chosen on narrow columns, then filtered once."""
    head = pl.col("household.relation").is_in(list(HEADS)).fill_null(False)
    narrow = evaluated.select(UNIT, SUBJECT, head.alias("head")).with_row_index("row")
    narrow = narrow.with_columns(pl.col("head").cast(pl.UInt32).sum().over(UNIT).alias("heads"))  # (see functions)
    keep = narrow.select(pl.col("head") & (pl.col("heads") == 1)).to_series()
    unclear = narrow.filter(pl.col("heads") != 1)
    if unclear.height:
        chosen = pl.coalesce(pl.col(SUBJECT).filter(pl.col("head")).min().over(UNIT), pl.col(SUBJECT).min().over(UNIT))
        keep = keep.scatter(unclear.filter(pl.col(SUBJECT) == chosen)["row"], True)
    return evaluated.filter(keep)


def _collect(frame: pl.LazyFrame) -> pl.DataFrame:
    try:
        return frame.collect()
    except pl.exceptions.PolarsError as e:
        raise RuleError(f"the rules could not be evaluated: {_first_line(e)}") from None


def _first_line(error: Exception) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]
