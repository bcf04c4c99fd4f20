"""RuleError: a rule that cannot be compiled or evaluated, pointing at the place in its text."""

from __future__ import annotations


class RuleError(ValueError):
    """A rule the engine refuses, with the expression text and the 0-based column of the offending part."""

    def __init__(self, message: str, expression: str | None = None, column: int | None = None, rule: str | None = None):
        self.message, self.expression, self.column, self.rule = message, expression, column, rule
        super().__init__(message)

    def within(self, rule: str) -> RuleError:
        """The same error, named after the rule it came from (rules.amount, rules.let.order, form …)."""
        return RuleError(self.message, self.expression, self.column, self.rule or rule)

    def __str__(self) -> str:
        where = f"{self.rule}: " if self.rule else ""
        if self.expression is None:
            return where + self.message
        if self.column is None:
            return f"{where}{self.message}\n    {self.expression}"
        # show the line that holds the column, with a caret under it (expressions may span YAML lines)
        start = self.expression.rfind("\n", 0, self.column) + 1
        end = self.expression.find("\n", self.column)
        line = self.expression[start : end if end >= 0 else None]
        return f"{where}{self.message}\n    {line}\n    {' ' * (self.column - start)}^"
