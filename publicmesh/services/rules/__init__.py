"""The rules engine for public-service definitions: `let`, `eligible`, `amount` and form sources, written as
small expressions (person.birth_date, household.sum(tax.income), age(...)) and compiled to vectorised Polars
over one frame per municipality. See compiler.py for the language."""

from publicmesh.services.rules.compiled import CompiledRules, Rule, compile_rules
from publicmesh.services.rules.errors import RuleError

__all__ = ["CompiledRules", "Rule", "RuleError", "compile_rules"]
