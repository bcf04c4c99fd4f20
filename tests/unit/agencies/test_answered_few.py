"""A short list's rows are matched in Python (datasets._answered_few), a long one's by a hash join in Polars: both
keep the same rows, in the same order, with the same positions in the request."""

from __future__ import annotations

import pyarrow as pa
import pytest

from publicmesh.provider import datasets

ROWS = pa.table(  # b's rows next to each other, oldest first (grouped); c twice, apart (not grouped)
    {"subject": ["a", "b", "b", "c", "d", "c"], "value": [1, 2, 3, 4, 5, 6]}
)


@pytest.mark.parametrize("keyed,grouped", [(True, False), (False, True), (False, False)])
@pytest.mark.parametrize("asked", [["c", "a", "x", "b"], ["b", "a", "b"], [], ["x"]])
def test_a_short_list_is_answered_as_the_hash_join_answers_it(monkeypatch, keyed, grouped, asked):
    few = datasets.answered(ROWS, asked, keyed, grouped, positions=True)
    monkeypatch.setattr(datasets, "FEW", -1)
    joined = datasets.answered(ROWS, asked, keyed, grouped, positions=True)
    assert few.to_pylist() == joined.to_pylist()
    assert few.schema == joined.schema
    assert datasets.answered(ROWS, asked, keyed, grouped).to_pylist() == joined.drop_columns(["i"]).to_pylist()


def test_a_short_list_is_not_joined_in_polars(monkeypatch):
    monkeypatch.setattr(datasets, "_answered_few", lambda *_a: "few")
    assert datasets.answered(ROWS, ["a"], True, False) == "few"
    assert datasets.answered(ROWS, ["a"] * (datasets.FEW + 1), True, False) != "few"
