"""The one YAML loader for text from outside: an alias bomb, deep nesting, too many aliases and too much text are
refused at once, and ordinary files load as yaml.safe_load loads them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from publicmesh import safe_yaml
from publicmesh.hub.rules import RuleBook
from publicmesh.services.definition import DefinitionError, definitions_dir, load_definition

# "Billion laughs": nine levels of nine aliases, 9^9 strings once expanded, in a few hundred bytes.
BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{b}: &{b} [{','.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi")
)


def test_the_bomb_is_small():
    assert len(BOMB) < 600


def test_an_alias_bomb_is_refused_within_a_second():
    started = time.perf_counter()
    with pytest.raises(safe_yaml.YAMLLimitError, match="expands to more than") as refused:
        safe_yaml.load(BOMB)
    assert time.perf_counter() - started < 1
    assert refused.value.problem_mark.line == 5  # where the expansion passes the limit (0-based)


def test_a_definition_bomb_is_a_problem_with_its_line_within_a_second():
    started = time.perf_counter()
    with pytest.raises(DefinitionError) as refused:
        load_definition(BOMB, name="bomb.yaml")
    assert time.perf_counter() - started < 1
    [problem] = refused.value.problems
    assert problem.line == 6 and problem.column == 4 and problem.message.startswith("YAML limit: expands to")


def test_the_rules_file_refuses_a_bomb(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(BOMB, encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(safe_yaml.YAMLLimitError):
        RuleBook.load(path)
    assert time.perf_counter() - started < 1


def test_too_many_aliases_are_refused_even_if_they_expand_to_little():
    text = "a: &a 1\nb: [" + ",".join(["*a"] * (safe_yaml.MAX_ALIASES + 1)) + "]\n"
    with pytest.raises(safe_yaml.YAMLLimitError, match="aliases"):
        safe_yaml.load(text)
    assert safe_yaml.load("a: &a 1\nb: [" + ",".join(["*a"] * safe_yaml.MAX_ALIASES) + "]\n")["b"][0] == 1


def test_deep_nesting_is_refused():
    depth = safe_yaml.MAX_DEPTH
    assert safe_yaml.load("[" * (depth - 1) + "]" * (depth - 1)) == eval("[" * (depth - 1) + "]" * (depth - 1))
    with pytest.raises(safe_yaml.YAMLLimitError, match="nested deeper"):
        safe_yaml.load("x: " + "[" * depth + "]" * depth)
    with pytest.raises(safe_yaml.YAMLLimitError, match="nested deeper"):
        safe_yaml.load("[" * 5000 + "]" * 5000)  # no RecursionError


def test_an_alias_inside_its_own_node_is_refused():
    with pytest.raises(safe_yaml.YAMLLimitError, match="inside the node"):
        safe_yaml.load("&a [*a]")


def test_too_much_text_is_refused_unread():
    with pytest.raises(safe_yaml.YAMLLimitError, match="bytes"):
        safe_yaml.load("x: " + "y" * safe_yaml.MAX_BYTES)
    with pytest.raises(DefinitionError, match="YAML limit"):
        load_definition("x: " + "y" * safe_yaml.MAX_BYTES + "\n", name="big.yaml")


@pytest.mark.parametrize(
    "path", [*sorted(definitions_dir().glob("*.yaml")), Path(__file__).parents[2] / "publicmesh/hub/rules.yaml"]
)
def test_shipped_files_load_as_before(path):
    text = path.read_text(encoding="utf-8")
    assert safe_yaml.load(text) == yaml.safe_load(text)
