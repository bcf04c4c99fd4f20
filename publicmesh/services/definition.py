"""A service definition (サービス定義): the YAML file an owner publishes, checked and loaded into frozen models.

Checks run in order — YAML syntax, the JSON schema (service.schema.json), then what a schema cannot say (the
catalog, references inside expressions) — and every problem points at its line and column in the file.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, model_validator

SCHEMA_PATH = Path(__file__).with_name("service.schema.json")
log = logging.getLogger(__name__)

ExpressionCheck = Callable[[str], None]  # one expression; raises an error with .message and .column
RulesCheck = Callable[[Mapping], None]  # the whole file's data; raises with .message, .column and .rule (rules.amount)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Localized(_Frozen):
    """A text in Japanese and English."""

    ja: str
    en: str


class DataSource(_Frozen):
    """Data a service reads through the hub: one dataset of one provider (情報提供者)."""

    provider: str  # CLASS/CODE/SYSTEM; {code} or * stands for each municipality
    dataset: str
    attributes: tuple[str, ...]
    # Deprecated and ignored (load_definition warns): the hub's access rules decide which sources are scanned
    # (services/fetch.py). Accepted so that definitions written before still load; not part of the content.
    scan: StrictBool | None = Field(default=None, exclude=True)


TableValue = StrictBool | StrictInt | dt.date | str


class Table(_Frozen):
    """A look-up table (金額表): rows of key values followed by an integer value."""

    key: tuple[str, ...]
    rows: tuple[tuple[TableValue, ...], ...]


class Rules(_Frozen):
    """Eligibility (支給要件) and amount (支給額) as expressions, with named intermediate values."""

    let: dict[str, str] = Field(default_factory=dict)
    eligible: str
    amount: StrictInt | str


class FormField(_Frozen):
    """One field of the application form: read from the mesh (source) or typed by the person (typed)."""

    name: str
    label: Localized
    source: str | None = None
    typed: Literal[True] | None = None
    type: Literal["text", "tel", "email", "date"] | None = None
    required: StrictBool = False
    format: Literal["yen", "date", "text"] | None = None

    @model_validator(mode="after")
    def _one_origin(self) -> FormField:
        if (self.source is None) == (self.typed is None):
            raise ValueError("a field has exactly one of source: or typed: true")
        return self


class Attachment(_Frozen):
    """A document the application carries (添付書類): fetched through the mesh, or as issued."""

    name: str
    label: Localized
    from_: Literal["mesh", "issuer"] = Field(alias="from")
    required: StrictBool = True
    description: Localized | None = None
    provider: str | None = None
    dataset: str | None = None
    attributes: tuple[str, ...] = ()
    issuer: Localized | None = None
    accept: tuple[str, ...] = ()


class Workflow(_Frozen):
    """Which steps are automatic; above ``review_over`` yen a reviewer and an approver decide."""

    automatic: StrictBool
    review_over: Annotated[StrictInt, Field(ge=0)]


class Notice(_Frozen):
    """A message to the person's portal inbox (お知らせ)."""

    title: Localized
    body: Localized


class Notices(_Frozen):
    eligible: Notice
    decided: Notice  # the approval
    rejected: Notice
    returned: Notice | None = None  # sent back to the person with a reason (差戻し)
    no_account: Notice | None = None
    paid: Notice | None = None  # the transfer is made (振込のお知らせ), with {amount} and {date}
    revised: Notice | None = None  # a birth raised the amount (額改定), with {previous}, {revised} and {amount}


class Payout(_Frozen):
    """How the money is paid: a Zengin 総合振込 file to public-fund accounts, or not at all."""

    method: Literal["zengin-sogo-furikomi", "none"]
    payer: Literal["municipality", "owner"] | None = None


class ServiceDefinition(_Frozen):
    """A public service (公共サービス) as its owner defined it."""

    id: str
    version: Annotated[StrictInt, Field(ge=1)]
    title: Localized
    owner: str
    legal_basis: str
    unit: Literal["person", "household"]
    as_of: dt.date
    triggers: tuple[Literal["publish", "birth"], ...]
    data: dict[str, DataSource]
    tables: dict[str, Table] = Field(default_factory=dict)
    rules: Rules
    form: tuple[FormField, ...]
    attachments: tuple[Attachment, ...] = ()
    workflow: Workflow
    notices: Notices
    payout: Payout

    @model_validator(mode="after")
    def _paying_needs(self) -> ServiceDefinition:
        if self.payout.method != "none" and (self.payout.payer is None or self.notices.no_account is None):
            raise ValueError("a service that pays needs payout.payer and notices.no_account")
        return self

    @property
    def pays(self) -> bool:
        return self.payout.method != "none"

    def expressions(self) -> Iterator[tuple[tuple, str]]:
        """Every expression with its path in the file, in the order they are evaluated."""
        for name, text in self.rules.let.items():
            yield ("rules", "let", name), text
        yield ("rules", "eligible"), self.rules.eligible
        if isinstance(self.rules.amount, str):
            yield ("rules", "amount"), self.rules.amount
        for i, field in enumerate(self.form):
            if field.source is not None:
                yield ("form", i, "source"), field.source


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition, at a 1-based line and column of its file."""

    line: int
    column: int
    path: str  # e.g. form[2].source; empty for the file as a whole
    message: str

    def format(self, name: str) -> str:
        return f"{name}:{self.line}:{self.column}: " + (f"{self.path}: " if self.path else "") + self.message


class DefinitionError(ValueError):
    """A definition that does not load, with every problem found at the stage that failed."""

    def __init__(self, name: str, problems: list[Problem]):
        self.name, self.problems = name, problems
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(p.format(self.name) for p in self.problems)


def definitions_dir() -> Path:
    """The definitions shipped with the package."""
    return Path(__file__).with_name("definitions")


def load_packaged(service_id: str, **options) -> ServiceDefinition:
    path = definitions_dir() / f"{service_id}.yaml"
    if "/" in service_id or not path.is_file():
        known = ", ".join(sorted(p.stem for p in definitions_dir().glob("*.yaml")))
        raise FileNotFoundError(f"no packaged service {service_id!r}; packaged: {known}")
    return load_definition(path, **options)


_catalog: dict[str, Mapping] = {}


def use_catalog(agencies: Mapping) -> None:
    """The agencies' datasets that definitions are checked against (the runtime's catalog, given at bootstrap: the
    services part knows the agencies only as data, never by importing them)."""
    _catalog["agencies"] = agencies


@functools.cache
def schema() -> dict:
    """The published JSON schema of a definition (draft 2020-12)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def load_definition(
    source: str | os.PathLike,
    *,
    expression_check: ExpressionCheck | None = None,
    rules_check: RulesCheck | None = None,
    catalog: Mapping | None = None,
    name: str | None = None,
) -> ServiceDefinition:
    """Load and check a definition from a path or from YAML text; raises DefinitionError with every problem.

    ``expression_check`` gets each expression, ``rules_check`` the file's data once every other check passed; an
    error they raise with ``.message`` and a 0-based ``.column`` (the rules compiler's RuleError, whose ``.rule``
    names the place, e.g. rules.let.order) becomes a problem there. ``catalog`` defaults to the one the bootstrap
    gave ``use_catalog``.
    """
    # definition_checks imports this module's types: imported here, not at the top, so neither is half made.
    from publicmesh.services import definition_checks as checks  # noqa: PLC0415

    text, name = _read(source, name)
    document = checks.parse(text)
    if document.problems:
        raise DefinitionError(name, document.problems)
    problems = checks.against_schema(document, schema())
    if problems:
        raise DefinitionError(name, problems)
    try:
        definition = ServiceDefinition.model_validate(document.data)
    except ValidationError as exc:
        raise DefinitionError(name, checks.from_pydantic(document, exc)) from None
    catalog = catalog if catalog is not None else _catalog.get("agencies")
    if catalog is None:
        raise RuntimeError("no catalog of agencies: the part's bootstrap calls use_catalog() first")
    problems = checks.semantic(document, definition, catalog, expression_check, rules_check)
    if problems:
        raise DefinitionError(name, problems)
    for source_name, source in definition.data.items():
        if source.scan is not None:
            where = document.problem(("data", source_name, "scan"), "", at_key=True)
            log.warning(
                "%s:%d:%d: data.%s.scan is deprecated and ignored: the hub's access rules decide what is scanned",
                name,
                where.line,
                where.column,
                source_name,
            )
    return definition


def content_hash(definition: ServiceDefinition) -> str:
    """sha256 of the normalised definition: the same for the same content, whatever the comments or layout."""
    normal = definition.model_dump(mode="json", by_alias=True)
    return hashlib.sha256(json.dumps(normal, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


def _read(source: str | os.PathLike, name: str | None) -> tuple[str, str]:
    if isinstance(source, os.PathLike) or (
        "\n" not in source and (source.endswith((".yaml", ".yml")) or os.path.isfile(source))
    ):
        return Path(source).read_text(encoding="utf-8"), name or str(source)
    return source, name or "<definition>"
