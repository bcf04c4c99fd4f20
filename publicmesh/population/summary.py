"""Counts over a generated persons table, for the CLI and quick checks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import cast

import polars as pl
import pyarrow as pa

_COUNTED = ("municipality_code", "relation", "employment", "health_insurance")


def _chunk_counts(frame: pl.DataFrame) -> dict[str, Counter]:
    heads = frame.filter(pl.col("relation").cast(pl.String).is_in(["head", "single"]))
    totals = frame.select(
        persons=pl.len(),
        deaths=pl.col("death_date").is_not_null().sum(),
        births=pl.col("born_this_year").sum(),
        protected_persons=pl.col("address_protected").sum(),
        non_registered=(~pl.col("registered")).sum(),
    ).row(0, named=True)
    totals["households"] = heads.height
    totals["protected_households"] = int(heads["address_protected"].sum())
    counts = {"totals": Counter({k: int(v) for k, v in totals.items()})}
    for column in _COUNTED:
        values = frame[column].cast(pl.String).value_counts()
        counts[column] = Counter(dict(zip(values[column].to_list(), values["count"].to_list())))
    return counts


def summarize(table: pa.Table | pl.DataFrame | Iterable[pa.Table]) -> dict:
    """Persons, households, deaths, births, protected and non-registered counts, and counts by
    municipality, relation, employment and health insurance; accepts a table or a stream of chunks."""
    if isinstance(table, pl.DataFrame):
        chunks: Iterable[pl.DataFrame] = [table]
    elif isinstance(table, pa.Table):
        chunks = [cast(pl.DataFrame, pl.from_arrow(table))]  # a table's rows come back as a DataFrame
    else:
        chunks = (cast(pl.DataFrame, pl.from_arrow(chunk)) for chunk in table)
    merged: dict[str, Counter] = {"totals": Counter(), **{c: Counter() for c in _COUNTED}}
    for chunk in chunks:
        for key, counter in _chunk_counts(chunk).items():
            merged[key].update(counter)
    totals = merged.pop("totals")
    keys = ("persons", "households", "deaths", "births", "protected_persons", "protected_households", "non_registered")
    summary: dict = {k: totals.get(k, 0) for k in keys}
    summary["by_municipality"] = dict(sorted(merged["municipality_code"].items()))
    for column, name in (
        ("relation", "by_relation"),
        ("employment", "by_employment"),
        ("health_insurance", "by_health_insurance"),
    ):
        summary[name] = dict(sorted(merged[column].items(), key=lambda kv: -kv[1]))
    return summary
