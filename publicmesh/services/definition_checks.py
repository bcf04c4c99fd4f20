"""The checks behind load_definition, each problem placed at its line and column in the YAML file: syntax, the
JSON schema, then what a schema cannot say (the agencies' catalog, names used inside expressions)."""

from __future__ import annotations

import ast
import datetime as dt
import difflib
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml
from jsonschema import Draft202012Validator, validators
from pydantic import ValidationError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from publicmesh.safe_yaml import LimitedLoader, YAMLLimitError
from publicmesh.services.definition import ExpressionCheck, Problem, RulesCheck, ServiceDefinition

# household.<function>(…) aggregates over the person's household; household.<attribute> is data
HOUSEHOLD_FUNCTIONS = ("sum", "count", "min", "max", "any", "all", "rank")
_NOT_SOURCES = {"amount", "eligible"}
# 1.0 is an integer to JSON Schema; to a definition it is a float where integer yen belong
_Validator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)


@dataclass
class Document:
    """A definition's text, its YAML node tree (which keeps the marks) and the plain data built from it."""

    text: str
    root: Node | None = None
    data: object = None
    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self):
        self.lines = self.text.splitlines()

    def locate(self, path) -> tuple[Node | None, Node | None, tuple]:
        """(key node, value node, the part of ``path`` found) for a path such as ('form', 2, 'source')."""
        key, node, found = None, self.root, ()
        for step in path:
            if isinstance(node, MappingNode):
                match = [(k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == str(step)]
                if not match:
                    break
                key, node = match[-1]  # the last of duplicate keys is the one that counts
            elif isinstance(node, SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
                key, node = None, node.value[step]
            else:
                break
            found += (step,)
        return key, node, found

    def problem(self, path, message: str, *, at_key: bool = False, offset: int | None = None) -> Problem:
        key, node, found = self.locate(path)
        target = key if at_key and key is not None else node
        if target is None:
            line, column = 1, 1
        elif offset is not None and isinstance(target, ScalarNode):
            line, column = _position_in_scalar(target, offset, self.lines)
        else:
            line, column = target.start_mark.line + 1, target.start_mark.column + 1
        return Problem(line, column, dotted(path), message)


def dotted(path) -> str:
    """('form', 2, 'source') → form[2].source"""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


class _Loader(LimitedLoader):
    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:  # 2026-13-01 looks like a date to the resolver but is none
            raise ConstructorError(None, None, f"{node.value!r} is not a date: {exc}", node.start_mark) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def parse(text: str) -> Document:
    """The YAML, or the syntax error at its line."""
    document = Document(text)
    try:
        loader = _Loader(text)
    except YAMLLimitError as exc:
        document.problems.append(Problem(1, 1, "", f"YAML limit: {exc.problem}"))
        return document
    try:
        document.root = loader.get_single_node()
        document.data = loader.construct_document(document.root) if document.root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or exc.context or "not valid YAML"
        prefix = "YAML limit: " if isinstance(exc, YAMLLimitError) else "YAML syntax: "
        if exc.context and exc.context_mark and exc.problem:
            message += f" ({exc.context} on line {exc.context_mark.line + 1})"
        document.problems.append(
            Problem(mark.line + 1 if mark else 1, mark.column + 1 if mark else 1, "", prefix + message)
        )
        return document
    except yaml.YAMLError as exc:
        document.problems.append(Problem(1, 1, "", f"YAML: {exc}"))
        return document
    finally:
        loader.dispose()
    document.problems.extend(_duplicate_keys(document, document.root, ()))
    return document


def _duplicate_keys(document: Document, node: Node | None, path: tuple) -> list[Problem]:
    problems = []
    if isinstance(node, MappingNode):
        seen: dict[str, Node] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, ScalarNode) else None
            if name in seen:
                problems.append(
                    Problem(
                        key.start_mark.line + 1,
                        key.start_mark.column + 1,
                        dotted(path + (name,)),
                        f"duplicate key '{name}' (first on line {seen[name].start_mark.line + 1})",
                    )
                )
            elif name is not None:
                seen[name] = key
            problems.extend(_duplicate_keys(document, value, path + (name,)))
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            problems.extend(_duplicate_keys(document, item, path + (i,)))
    return problems


def _plain(value):
    """The data as JSON Schema sees it: dates as ISO text, keys as text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def against_schema(document: Document, schema: dict) -> list[Problem]:
    """Every schema error, sorted by line."""
    validator = _Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    problems = {p for error in validator.iter_errors(_plain(document.data)) for p in _schema_problems(document, error)}
    return sorted(problems, key=lambda p: (p.line, p.column, p.path, p.message))


def _schema_problems(document: Document, error) -> list[Problem]:
    path, instance, kind, value = tuple(error.absolute_path), error.instance, error.validator, error.validator_value
    if kind == "additionalProperties" and isinstance(instance, dict):
        allowed = list(error.schema.get("properties", {}))
        out = []
        for key in (k for k in instance if k not in allowed):
            hint = difflib.get_close_matches(key, allowed, n=1)
            out.append(
                document.problem(
                    path + (key,),
                    f"unknown key '{key}'"
                    + (f" (did you mean '{hint[0]}'?)" if hint else f"; allowed here: {', '.join(allowed)}"),
                    at_key=True,
                )
            )
        return out
    if kind == "required":
        missing = _quoted(error.message) or next(k for k in value if k not in instance)
        why = {
            "no_account": " (a service that pays needs it: payout.method is not none)",
            "payer": " (who pays: municipality or owner)",
        }.get(missing, "")
        problem = document.problem(path, f"missing required key '{missing}'{why}", at_key=True)
        return [Problem(problem.line, problem.column, dotted(path + (missing,)), problem.message)]
    if "propertyNames" in error.absolute_schema_path:
        title = error.schema.get("title", "name")
        return [document.problem(path + (instance,), f"'{instance}' is not a valid {title}", at_key=True)]
    if kind == "oneOf" and isinstance(instance, dict) and "label" in instance:
        if "source" in instance and "typed" in instance:
            later = max(("source", "typed"), key=lambda k: document.locate(path + (k,))[0].start_mark.index)
            return [
                document.problem(
                    path + (later,),
                    "a field has exactly one of source: (read from the mesh) or "
                    "typed: true (typed by the person), not both",
                    at_key=True,
                )
            ]
        return [document.problem(path, "a field needs source: (an expression) or typed: true (typed by the person)")]
    if kind == "dependentRequired":
        match = re.match(r"'(.+)' is a dependency of '(.+)'", error.message)
        need, key = match.groups() if match else ("?", "?")
        return [document.problem(path + (key,), f"{key}: also needs {need}:", at_key=True)]
    return [document.problem(path, _message(error, path))]


def _quoted(message: str) -> str | None:
    match = re.match(r"'(.+)' is a required property", message)
    return match.group(1) if match else None


_KINDS = {
    "integer": "an integer",
    "string": "a string",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "number": "a number",
    "null": "empty",
}
_MONEY = {"amount", "review_over", "rows"}


def _describe(value, path=()) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        money = any(step in _MONEY for step in path if isinstance(step, str))
        return f"{value!r}" + (" (money is integer yen)" if money else " (a whole number is needed)")
    if value is None:
        return "empty"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _message(error, path: tuple) -> str:
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "type" and not path:
        return "a definition is a YAML mapping of id:, version:, title: …"
    if kind == "type":
        kinds = [value] if isinstance(value, str) else value
        return f"must be {' or '.join(_KINDS.get(k, k) for k in kinds)}, not {_describe(instance, path)}"
    if kind == "enum":
        return f"must be one of {', '.join(map(str, value))}, not {_describe(instance)}"
    if kind == "const":
        return f"must be {_describe(value)}, not {_describe(instance)}"
    if kind == "pattern":
        return f"{instance!r} is not a valid {error.schema.get('title', 'value: expected ' + value)}"
    if kind == "format":
        return f"{instance!r} is not a {value}" + (" (YYYY-MM-DD)" if value == "date" else "")
    if kind == "minimum":
        return f"must be at least {value}, not {_describe(instance)}"
    if kind in ("minItems", "minProperties", "minLength") and value == 1:
        return "must not be empty"
    if kind == "minItems":
        return f"needs at least {value} items"
    if kind == "maxLength":
        return f"must be at most {value} characters"
    if kind == "uniqueItems":
        repeated = sorted({str(x) for x in instance if instance.count(x) > 1})
        return f"repeats {', '.join(repeated)}"
    return error.message


def from_pydantic(document: Document, exc: ValidationError) -> list[Problem]:
    """Errors the models find that the schema let through, at the deepest part of their path in the file."""
    problems = []
    for error in exc.errors():
        _, _, found = document.locate(error["loc"])
        problems.append(document.problem(found, error["msg"].removeprefix("Value error, ")))
    return sorted(problems, key=lambda p: (p.line, p.column))


def semantic(
    document: Document,
    definition: ServiceDefinition,
    catalog: Mapping,
    expression_check: ExpressionCheck | None = None,
    rules_check: RulesCheck | None = None,
) -> list[Problem]:
    """What the schema cannot say: the data exists in the catalog, expressions name what is declared."""
    problems = []
    for name, source in definition.data.items():
        for sub, message in _catalog_problems(source.provider, source.dataset, source.attributes, catalog):
            problems.append(document.problem(("data", name, *sub), message))
    for i, attachment in enumerate(definition.attachments):
        if attachment.from_ == "mesh":
            for sub, message in _catalog_problems(
                attachment.provider, attachment.dataset, attachment.attributes, catalog
            ):
                problems.append(document.problem(("attachments", i, *sub), message))
    for name, table in definition.tables.items():
        problems.extend(_table_problems(document, name, table))
    problems.extend(_unique_names(document, "form", [f.name for f in definition.form]))
    problems.extend(_unique_names(document, "attachments", [a.name for a in definition.attachments]))
    problems.extend(_notice_problems(document, definition))
    sources = {name: set(source.attributes) for name, source in definition.data.items()}
    tables = {name: table.key for name, table in definition.tables.items()}
    lets = set(definition.rules.let)
    for path, text in definition.expressions():
        found = [
            document.problem(path, message, offset=offset)
            for offset, message in expression_problems(text, sources, tables, lets)
        ]
        if not found and expression_check is not None:
            try:
                expression_check(text)
            except Exception as exc:
                if not hasattr(exc, "message"):
                    raise
                found.append(document.problem(path, exc.message, offset=getattr(exc, "column", None) or 0))
        problems.extend(found)
    if not problems and rules_check is not None:
        try:
            rules_check(document.data)
        except Exception as exc:
            if not hasattr(exc, "message"):
                raise
            path = _undotted(getattr(exc, "rule", None) or "rules")
            problems.append(document.problem(path, exc.message, offset=getattr(exc, "column", None)))
    return sorted(problems, key=lambda p: (p.line, p.column))


def _undotted(label: str) -> tuple:
    """rules.let.order → ('rules', 'let', 'order'); form[2].source → ('form', 2, 'source')"""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"\.|\[|\]\.?", label) if part)


def _catalog_problems(provider: str, dataset: str, attributes, catalog: Mapping) -> list[tuple[tuple, str]]:
    member_class, _code, system = provider.split("/")
    agency = catalog.get(system)
    if agency is None:
        return [(("provider",), f"no agency system '{system}' in the catalog; systems: {', '.join(catalog)}")]
    if agency.municipal and member_class != "MUNI":
        return [(("provider",), f"{system} is a municipal system: write MUNI/{{code}}/{system}")]
    if not agency.municipal and provider != f"GOV/{agency.gov_code}/{system}":
        return [(("provider",), f"{system} is a national system: write GOV/{agency.gov_code}/{system}")]
    found = agency.datasets.get(dataset)
    if found is None:
        return [(("dataset",), f"{system} has no dataset '{dataset}'; its datasets: {', '.join(agency.datasets)}")]
    names = [a.name for a in found.attributes]
    return [
        (("attributes", i), f"{system}/{dataset} has no attribute '{a}'; it has: {', '.join(names)}")
        for i, a in enumerate(attributes)
        if a not in names
    ]


def _table_problems(document: Document, name: str, table) -> list[Problem]:
    problems, width, seen = [], len(table.key) + 1, {}
    for i, row in enumerate(table.rows):
        path = ("tables", name, "rows", i)
        if len(row) != width:
            problems.append(
                document.problem(
                    path,
                    f"a row holds {len(table.key)} key values "
                    f"({', '.join(table.key)}) and a value: {width} items, not {len(row)}",
                )
            )
        elif type(row[-1]) is not int:
            problems.append(
                document.problem(path + (width - 1,), f"the value must be an integer (yen), not {_describe(row[-1])}")
            )
        elif row[:-1] in seen:
            problems.append(document.problem(path, f"repeats the key of row {seen[row[:-1]]}"))
        else:
            seen[row[:-1]] = i
    return problems


def _unique_names(document: Document, section: str, names: list[str]) -> list[Problem]:
    first: dict[str, int] = {}
    problems = []
    for i, name in enumerate(names):
        if name in first:
            problems.append(document.problem((section, i, "name"), f"repeats the name of {section}[{first[name]}]"))
        first.setdefault(name, i)
    return problems


def _notice_problems(document: Document, definition: ServiceDefinition) -> list[Problem]:
    problems = []
    for kind in ("eligible", "decided", "rejected", "returned", "no_account", "paid", "revised"):
        notice = getattr(definition.notices, kind)
        allowed = {
            "rejected": ("amount", "reason"),
            "returned": ("amount", "reason"),
            "paid": ("amount", "date"),
            "revised": ("previous", "revised", "amount"),
        }.get(kind, ("amount",))
        for part in ("title", "body") if notice is not None else ():
            for language in ("ja", "en"):
                path, text = ("notices", kind, part, language), getattr(getattr(notice, part), language)
                try:
                    used = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
                except ValueError as exc:
                    problems.append(document.problem(path, f"not a valid text: {exc} (write {{{{ for a brace)"))
                    continue
                for placeholder in used:
                    if placeholder not in allowed:
                        problems.append(
                            document.problem(
                                path,
                                f"unknown placeholder {{{placeholder}}}; a {kind} "
                                f"notice may use {', '.join('{' + a + '}' for a in allowed)}",
                            )
                        )
    return problems


def expression_problems(
    text: str, sources: Mapping[str, set], tables: Mapping[str, tuple], lets: set
) -> list[tuple[int, str]]:
    """(0-based offset in the expression, message) for each name it uses that the definition does not declare."""
    line = text.replace("\n", " ")  # a block scalar may span lines; one line keeps every offset
    indent = len(line) - len(line.lstrip())
    line = line[indent:]
    try:
        tree = ast.parse(line, mode="eval")
    except SyntaxError as exc:
        return [(indent + min(max((exc.offset or 1) - 1, 0), len(line)), f"not a valid expression: {exc.msg}")]
    problems, functions = [], set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "household":
            functions.add(id(func))
            if func.attr not in HOUSEHOLD_FUNCTIONS:
                problems.append(
                    (
                        _at(line, func),
                        f"household.{func.attr}() is not a function; household has {', '.join(HOUSEHOLD_FUNCTIONS)}",
                    )
                )
        elif isinstance(func, ast.Name) and func.id == "table" and node.args:
            name = node.args[0].value if isinstance(node.args[0], ast.Constant) else None
            if not isinstance(name, str):
                problems.append((_at(line, node.args[0]), "table(…) takes the table's name first, in quotes"))
            elif name not in tables:
                problems.append(
                    (
                        _at(line, node.args[0]),
                        f"no table '{name}'; "
                        + (f"tables: {', '.join(tables)}" if tables else "the definition has no tables:"),
                    )
                )
            elif len(node.args) - 1 != len(tables[name]):
                problems.append(
                    (
                        _at(line, node),
                        f"table '{name}' has {len(tables[name])} key columns "
                        f"({', '.join(tables[name])}); the call gives {len(node.args) - 1}",
                    )
                )
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)) or id(node) in functions:
            continue
        source, attribute = node.value.id, node.attr
        if source in sources and attribute not in sources[source]:
            problems.append(
                (
                    _at(line, node),
                    f"{source}.{attribute} is not declared: data.{source}.attributes "
                    f"lists {', '.join(sorted(sources[source]))}",
                )
            )
        elif source not in sources and source not in lets and source not in _NOT_SOURCES:
            problems.append(
                (
                    _at(line, node),
                    f"{source} is not a data source of this definition; data: declares {', '.join(sources) or 'none'}",
                )
            )
    return sorted((indent + at, message) for at, message in problems)


def _at(line: str, node: ast.AST) -> int:
    """The character offset of a node; ast counts UTF-8 bytes."""
    return len(line.encode()[: node.col_offset].decode(errors="ignore"))


def _position_in_scalar(node: ScalarNode, offset: int, lines: list[str]) -> tuple[int, int]:
    """1-based line and column in the file of a character of a scalar's value (plain, quoted or block)."""
    start, end = node.start_mark, node.end_mark
    if node.style in ("|", ">"):
        body = lines[start.line + 1 : end.line + 1]
        indent = next((len(t) - len(t.lstrip(" ")) for t in body if t.strip()), 0)  # set by the first line
        segments = []
        for i, t in enumerate(body):
            if t.strip() and len(t) - len(t.lstrip(" ")) < indent:
                break
            segments.append((start.line + 1 + i, indent, t[indent:]))
    else:
        quote = 1 if node.style in ("'", '"') else 0
        raw = lines[start.line : end.line + 1] or [""]
        segments = [(start.line, start.column + quote, raw[0][start.column + quote :])]
        segments += [(start.line + i, len(t) - len(t.lstrip()), t.strip()) for i, t in enumerate(raw[1:], 1)]
    if node.style != "|":  # folding turns a line break (and the blank lines after it) into one character
        segments = [s for s in segments if s[2]] or segments[:1]
    remaining = offset
    for line, column, content in segments:
        if remaining <= len(content):
            return line + 1, column + remaining + 1
        remaining -= len(content) + 1
    return start.line + 1, start.column + 1
