"""The rule language: one expression per string, parsed with Python's `ast` and compiled node by node into a
Polars expression. Only whitelisted nodes pass, so a rule reads data and never runs code.

    person.status == "resident" and household.sum(tax.income) < 2_000_000
    where(child, table("monthly_by_order_and_age", order >= 3, age(person.birth_date) < 3), 0)

Values: source.attribute, earlier `let` names, integers, strings, True/False. Operators: + - * // %, unary -,
comparisons (chained), in / not in [list], and / or / not. Functions: FUNCTIONS, and household.AGGREGATES
over the members sharing the household key."""

from __future__ import annotations

import ast
import datetime as dt
import io
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import reduce

import polars as pl

from publicmesh.services.rules import functions as fn
from publicmesh.services.rules.errors import RuleError

FUNCTIONS = ("age", "age_on", "coalesce", "max", "min", "table", "where")
# household.<name>: (positional arguments, whether where= is accepted)
AGGREGATES = {
    "sum": (1, True),
    "count": (0, True),
    "min": (1, True),
    "max": (1, True),
    "rank": (1, True),
    "any": (1, False),
    "all": (1, False),
}
_ARITHMETIC = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
}
_COMPARISON = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}
_SYMBOLS = {
    ast.Pow: "**",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
    ast.Invert: "~",
    ast.Is: "is",
    ast.IsNot: "is not",
}
_NODE_NAMES = {
    ast.IfExp: "a conditional expression (use where(cond, a, b))",
    ast.Subscript: "indexing",
    ast.Lambda: "lambda",
    ast.JoinedStr: "an f-string",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.Tuple: "a tuple",
    ast.ListComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.NamedExpr: "an assignment (:=)",
    ast.Starred: "unpacking (*)",
    ast.Await: "await",
    ast.Attribute: "attribute access other than source.attribute",
}
_INT64 = range(-(2**63), 2**63)


@dataclass(frozen=True)
class Scope:
    """What an expression may name: earlier `let` values, the definition's data and tables, the reference date."""

    as_of: dt.date
    tables: Mapping[str, fn.Table] = field(default_factory=dict)
    names: tuple[str, ...] = ()
    sources: Mapping[str, frozenset[str]] | None = None  # the definition's data:, or None to check on the frame

    def naming(self, *more: str) -> Scope:
        return replace(self, names=self.names + more)

    def available(self) -> str:
        columns = [f"{s}.{a}" for s, attrs in (self.sources or {}).items() for a in sorted(attrs)]
        return ", ".join([*self.names, *columns]) or "no names (only data references such as person.birth_date)"


@dataclass(frozen=True)
class Check:
    """A type the frame's schema must confirm at evaluation (Polars would silently do a bitwise `and` on
    integers, or fail deep inside `age` on a string)."""

    expr: pl.Expr
    wants: str  # "boolean" | "date"
    column: int
    what: str


@dataclass(frozen=True)
class Compiled:
    """One compiled expression with what it reads (input column → first offset) and its pending type checks."""

    text: str
    expr: pl.Expr
    columns: dict[str, int]
    checks: tuple[Check, ...]
    aggregates: bool = False  # uses household.<aggregate>(): needs every member's row, not just the unit's


def compile_expression(text, scope: Scope) -> Compiled:
    """Compile one rule expression; YAML may hand over a bare number or boolean (`amount: 0`)."""
    return _Compiler(str(text), scope).compile()


class _Compiler:
    def __init__(self, text: str, scope: Scope):
        self.text, self.scope = text, scope
        # Newlines become spaces so a rule may span YAML lines without parentheses; offsets stay the same.
        flat = text.replace("\r", " ").replace("\n", " ")
        self.body = flat.strip()
        self.lead = len(flat) - len(flat.lstrip())
        self.encoded = self.body.encode()
        self.columns: dict[str, int] = {}
        self.checks: list[Check] = []
        self.aggregates = False

    def compile(self) -> Compiled:
        if not self.body:
            raise RuleError("the expression is empty", self.text, 0)
        self._refuse_comments()
        try:
            tree = ast.parse(self.body, mode="eval")
        except (RecursionError, MemoryError):
            raise RuleError("the expression is nested too deeply; split it with let:", self.text, 0) from None
        except SyntaxError as e:
            # Python gives no offset when the text ends too early ("x ==", "f(x"): point at the end
            at = self.lead + (e.offset - 1 if e.offset else len(self.body))
            raise RuleError(f"syntax error: {e.msg}", self.text, min(at, len(self.text))) from None
        try:
            expr = self.expr(tree.body)
            return Compiled(self.text, expr, self.columns, tuple(self.checks), self.aggregates)
        except RecursionError:
            raise RuleError("the expression is nested too deeply; split it with let:", self.text, 0) from None

    def _refuse_comments(self) -> None:
        """A `#` would silently drop the rest of a folded rule; comments belong in the YAML."""
        if "#" not in self.body:
            return
        try:
            for token in tokenize.generate_tokens(io.StringIO(self.body).readline):
                if token.type == tokenize.COMMENT:
                    raise RuleError(
                        "comments belong in the YAML, not inside an expression", self.text, self.lead + token.start[1]
                    )
        except (tokenize.TokenError, SyntaxError):
            pass  # the parser reports it with a position

    def error(self, node: ast.AST, message: str) -> RuleError:
        return RuleError(message, self.text, self.column(node.col_offset))

    def column(self, byte_offset: int) -> int:
        """`ast` counts UTF-8 bytes; people count characters (氏名 in a string literal is two, not six)."""
        return self.lead + len(self.encoded[:byte_offset].decode(errors="ignore"))

    def expr(self, node: ast.AST) -> pl.Expr:
        match node:
            case ast.Constant(value=bool(value)):
                return pl.lit(value, pl.Boolean)
            case ast.Constant(value=int(value)):
                if value not in _INT64:
                    raise self.error(node, f"{value} does not fit a 64-bit integer")
                return pl.lit(value, pl.Int64)
            case ast.Constant(value=str(value)):
                return pl.lit(value, pl.Utf8)
            case ast.Constant(value=float()):
                raise self.error(node, "a fractional number: money is integer yen (write 1_000, not 1000.0)")
            case ast.Constant(value=value):
                raise self.error(node, f"{value!r} is not a value in rules (use coalesce() for missing data)")
            case ast.Name():
                return self.name(node)
            case ast.Attribute(value=ast.Name(id=source), attr=attribute):
                return self.reference(node, source, attribute)
            case ast.BinOp(op=op):
                return self.arithmetic(node, op)
            case ast.UnaryOp(op=ast.USub()):
                return -self.expr(node.operand)
            case ast.UnaryOp(op=ast.UAdd()):
                return self.expr(node.operand)
            case ast.UnaryOp(op=ast.Not()):
                return ~self.boolean(node.operand, "not")
            case ast.BoolOp(op=op, values=values):
                word, join = ("and", pl.Expr.__and__) if isinstance(op, ast.And) else ("or", pl.Expr.__or__)
                return reduce(join, [self.boolean(v, word) for v in values])
            case ast.Compare():
                return self.comparison(node)
            case ast.Call():
                return self.call(node)
            case ast.List():
                raise self.error(node, "a list is only allowed after `in` or `not in`")
        kind = _NODE_NAMES.get(type(node)) or _SYMBOLS.get(type(getattr(node, "op", None))) or type(node).__name__
        raise self.error(node, f"{kind} is not part of the rule language")

    def boolean(self, node: ast.AST, what: str) -> pl.Expr:
        compiled = self.expr(node)
        self.checks.append(Check(compiled, "boolean", self.column(node.col_offset), what))
        return compiled

    def date(self, node: ast.AST, what: str) -> pl.Expr:
        compiled = self.expr(node)
        self.checks.append(Check(compiled, "date", self.column(node.col_offset), what))
        return compiled

    def name(self, node: ast.Name) -> pl.Expr:
        if node.id in self.scope.names:
            return pl.col(node.id)
        hint = ""
        if node.id in ("true", "false", "null", "none", "None"):
            hint = " (write True or False; missing data is handled with coalesce())"
        elif self.scope.sources and node.id in self.scope.sources:
            hint = f" ({node.id} is a data source: write {node.id}.<attribute>)"
        elif node.id in ("amount", "eligible"):
            hint = f" ({node.id} is known only after the rules; a form source may use it)"
        raise self.error(node, f"unknown name {node.id!r}{hint}; available: {self.scope.available()}")

    def reference(self, node: ast.Attribute, source: str, attribute: str) -> pl.Expr:
        if source in self.scope.names:
            raise self.error(node, f"{source!r} is a let value and has no attributes")
        sources = self.scope.sources
        if sources is not None and source not in sources:
            raise self.error(node, f"unknown data source {source!r}; available: {', '.join(sources) or 'none'}")
        if sources is not None and attribute not in sources[source]:
            raise self.error(
                node,
                f"unknown name {source}.{attribute}; {source} has: "
                + ", ".join(f"{source}.{a}" for a in sorted(sources[source])),
            )
        column = f"{source}.{attribute}"
        self.columns.setdefault(column, self.column(node.col_offset))
        return pl.col(column)

    def arithmetic(self, node: ast.BinOp, op: ast.operator) -> pl.Expr:
        if isinstance(op, ast.Div):
            at = self.body.find("/", len(self.encoded[: node.left.end_col_offset].decode(errors="ignore")))
            raise RuleError(
                "`/` gives fractions: money is integer yen, use `//` (rounds down)", self.text, self.lead + at
            )
        if type(op) not in _ARITHMETIC:
            raise self.error(
                node,
                f"the operator {_SYMBOLS.get(type(op), type(op).__name__)} is not part of "
                "the rule language (use and / or / not for conditions)",
            )
        return _ARITHMETIC[type(op)](self.expr(node.left), self.expr(node.right))

    def comparison(self, node: ast.Compare) -> pl.Expr:
        """Chained comparisons read as in Python: `0 <= x < 3` is `0 <= x and x < 3`."""
        operands = [node.left, *node.comparators]
        compiled: dict[int, pl.Expr] = {}

        def operand(i: int) -> pl.Expr:
            if i not in compiled:
                compiled[i] = self.expr(operands[i])
            return compiled[i]

        parts = []
        for i, op in enumerate(node.ops):
            if isinstance(op, (ast.In, ast.NotIn)):
                found = operand(i).is_in(self.members(operands[i + 1]))
                parts.append(~found if isinstance(op, ast.NotIn) else found)
            elif type(op) in _COMPARISON:
                parts.append(_COMPARISON[type(op)](operand(i), operand(i + 1)))
            else:
                raise self.error(
                    node,
                    f"`{_SYMBOLS[type(op)]}` is not part of the rule language (use ==, or coalesce() for missing data)",
                )
        return reduce(pl.Expr.__and__, parts)

    def members(self, node: ast.AST) -> pl.Series:
        """The list after `in`, as one list value (Polars reads a bare series of the same type as ambiguous)."""
        if not isinstance(node, ast.List):
            raise self.error(node, '`in` takes a list literal, such as ["head", "single"]')
        values = []
        for element in node.elts:
            if not isinstance(element, ast.Constant) or type(element.value) not in (bool, int, str):
                raise self.error(element, "a list after `in` holds only integers, strings or True/False")
            values.append(element.value)
        if not values or len({type(v) for v in values}) > 1:
            raise self.error(node, "a list after `in` holds one or more values of one kind")
        return pl.Series(values, dtype={bool: pl.Boolean, int: pl.Int64, str: pl.Utf8}[type(values[0])]).implode()

    def call(self, node: ast.Call) -> pl.Expr:
        for argument in node.args:
            if isinstance(argument, ast.Starred):
                raise self.error(argument, "unpacking (*) is not part of the rule language")
        match node.func:
            case ast.Name(id=name) if name in FUNCTIONS:
                if node.keywords:
                    raise self.error(node.keywords[0].value, f"{name}() takes no keyword arguments")
                return getattr(self, f"call_{name}")(node, node.args)
            case ast.Attribute(value=ast.Name(id="household"), attr=name) if name in AGGREGATES:
                return self.aggregate(node, name)
        available = ", ".join([*FUNCTIONS, *(f"household.{a}" for a in AGGREGATES)])
        raise self.error(node.func, f"unknown function {ast.unparse(node.func)}(); available: {available}")

    def arity(self, node: ast.Call, name: str, count: int, at_least: bool = False) -> None:
        given = len(node.args)
        if given < count or (given > count and not at_least):
            wanted = f"at least {count}" if at_least else str(count)
            raise self.error(node, f"{name}() takes {wanted} argument{'s' * (count != 1)}, not {given}")

    def literal_string(self, node: ast.AST, what: str) -> str:
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
            raise self.error(node, f"{what} must be a string literal")
        return node.value

    def call_age(self, node, args) -> pl.Expr:
        self.arity(node, "age", 1)
        return fn.legal_age(self.date(args[0], "age()"), self.scope.as_of)

    def call_age_on(self, node, args) -> pl.Expr:
        self.arity(node, "age_on", 2)
        text = self.literal_string(args[1], "the date of age_on()")
        try:
            on = dt.date.fromisoformat(text)
            if on == dt.date.max:
                raise ValueError
        except ValueError:
            raise self.error(args[1], f"{text!r} is not a date (YYYY-MM-DD)") from None
        return fn.legal_age(self.date(args[0], "age_on()"), on)

    def call_where(self, node, args) -> pl.Expr:
        """A null condition takes the `else` branch, as an unmet one."""
        self.arity(node, "where", 3)
        return pl.when(self.boolean(args[0], "where()")).then(self.expr(args[1])).otherwise(self.expr(args[2]))

    def call_min(self, node, args) -> pl.Expr:
        self.arity(node, "min", 2, at_least=True)
        return pl.min_horizontal([self.expr(a) for a in args])  # nulls are skipped, as in SQL's LEAST

    def call_max(self, node, args) -> pl.Expr:
        self.arity(node, "max", 2, at_least=True)
        return pl.max_horizontal([self.expr(a) for a in args])

    def call_coalesce(self, node, args) -> pl.Expr:
        self.arity(node, "coalesce", 2, at_least=True)
        return pl.coalesce([self.expr(a) for a in args])

    def call_table(self, node, args) -> pl.Expr:
        self.arity(node, "table", 1, at_least=True)
        name = self.literal_string(args[0], "the table name")
        table = self.scope.tables.get(name)
        if table is None:
            raise self.error(args[0], f"unknown table {name!r}; available: {', '.join(self.scope.tables) or 'none'}")
        if len(args) - 1 != len(table.key):
            raise self.error(
                node,
                f"table {name!r} is keyed by {', '.join(table.key)}: give {len(table.key)} "
                f"key value{'s' * (len(table.key) != 1)}, not {len(args) - 1}",
            )
        return table.lookup([self.expr(a) for a in args[1:]])

    def aggregate(self, node: ast.Call, name: str) -> pl.Expr:
        self.aggregates = True
        positional, takes_where = AGGREGATES[name]
        self.arity(node, f"household.{name}", positional)
        where = None
        for keyword in node.keywords:
            if keyword.arg != "where" or not takes_where or where is not None:
                label = "**" if keyword.arg is None else f"{keyword.arg}="
                raise self.error(
                    keyword, f"household.{name}() does not take {label}" + (" (only where=)" if takes_where else "")
                )
            where = self.boolean(keyword.value, f"household.{name}(where=)")
        match name:
            case "count":
                return fn.household_count(where)
            case "any" | "all":
                condition = self.boolean(node.args[0], f"household.{name}()")
                return fn.household_any(condition) if name == "any" else fn.household_all(condition)
        value = self.expr(node.args[0])
        aggregate = {
            "sum": fn.household_sum,
            "min": fn.household_min,
            "max": fn.household_max,
            "rank": fn.household_rank,
        }[name]
        return aggregate(value, where)
