"""Datasets an agency publishes: attributes with JSON schemas, looked up by the agency's own pseudonym."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
from sqlalchemy import Connection, Table, bindparam, select

SCAN_OVER = 5_000  # subjects in one lookup above which the tenant is scanned instead of listing them


@dataclass(frozen=True)
class Attribute:
    """One published data item (データ項目)."""

    name: str
    schema: dict
    title_ja: str
    title_en: str
    category: str = "general"  # "address" items are withheld for protected persons
    column: str | None = None

    @property
    def is_address(self) -> bool:
        return self.category == "address"


Lookup = Callable[[Connection, str | None, Sequence[str], Sequence[str]], dict[str, dict]]
# (conn, tenant, subjects or None for every subject, attributes) → Arrow table: subject, _protected, attributes
BulkLookup = Callable[[Connection, str | None, Sequence[str] | None, Sequence[str]], pa.Table]


@dataclass(frozen=True)
class Dataset:
    """A dataset of one agency; ``lookup`` maps its pseudonyms to rows of the asked attributes."""

    name: str
    title_ja: str
    title_en: str
    attributes: tuple[Attribute, ...]
    table: Table | None = None
    tenant_column: str | None = "tenant"
    protected_column: str | None = None
    order_by: str | None = None  # latest row first when a subject has several (e.g. by fiscal year)
    custom_lookup: Lookup | None = None
    filters: dict = field(default_factory=dict)
    scan_table: Table | None = None  # where a whole-municipality scan lists subjects (default: ``table``)
    custom_bulk: BulkLookup | None = None

    def all_subjects(self, conn: Connection, tenant: str | None) -> list[str]:
        """Every subject of the dataset in one tenant: what a population-scale service starts from."""
        table = self.scan_table if self.scan_table is not None else self.table
        if table is None:
            raise ValueError(f"dataset {self.name} cannot be scanned")
        query = select(table.c.pseudonym).distinct()
        if self.tenant_column and tenant is not None:
            query = query.where(table.c[self.tenant_column] == tenant)
        return [row[0] for row in conn.execute(query.order_by(table.c.pseudonym))]

    def attribute(self, name: str) -> Attribute | None:
        return next((a for a in self.attributes if a.name == name), None)

    @property
    def pseudonym_paths(self) -> list[str]:
        """Attributes (or 'attr[].field' paths) that carry pseudonyms the hub must convert."""
        paths = []
        for attr in self.attributes:
            if attr.schema.get("format") == "pseudonym":
                paths.append(attr.name)
            items = attr.schema.get("items", {})
            for key, sub in items.get("properties", {}).items():
                if sub.get("format") == "pseudonym":
                    paths.append(f"{attr.name}[].{key}")
        return paths

    def json_schema(self) -> dict:
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": self.title_en,
            "description": self.title_ja,
            "type": "object",
            "properties": {a.name: {**a.schema, "title": a.title_en, "description": a.title_ja} for a in self.attributes},
            "additionalProperties": False,
        }

    def describe(self) -> dict:
        return {
            "name": self.name,
            "title_ja": self.title_ja,
            "title_en": self.title_en,
            "attributes": [
                {"name": a.name, "title_ja": a.title_ja, "title_en": a.title_en, "category": a.category, "schema": a.schema}
                for a in self.attributes
            ],
            "pseudonym_paths": self.pseudonym_paths,
            "schema": self.json_schema(),
        }

    def lookup(self, conn: Connection, tenant: str | None, subjects: Sequence[str], attributes: Sequence[str]) -> dict[str, dict]:
        """Rows for the subjects found, keyed by pseudonym; ``_protected`` marks address protection."""
        if self.custom_lookup is not None:
            return self.custom_lookup(conn, tenant, subjects, attributes)
        # A request for a large share of a municipality reads it in one scan, filtered here: an IN list of a
        # hundred thousand pseudonyms costs far more to build and plan than reading the tenant's rows.
        wanted = set(subjects) if len(subjects) > SCAN_OVER else None
        query = self._statement(tuple(attributes), self.tenant_column is not None and tenant is not None,
                                scan=wanted is not None)
        params = {} if wanted is not None else {"subjects": list(subjects)}
        if self.tenant_column and tenant is not None:
            params["tenant"] = tenant
        found: dict[str, dict] = {}
        result = conn.execute(query, params)
        names = list(result.keys())[1:]
        dated = [i for i, column in enumerate(query.selected_columns[1:]) if _is_temporal(column.type)]
        for row in result:  # plain tuples: the mapping view per row costs more than the values
            subject = row[0]
            if (wanted is not None and subject not in wanted) or subject in found:
                continue  # not asked for, or an older row of a subject already found (latest first)
            values = list(row[1:])
            for i in dated:
                values[i] = _json_value(values[i])
            found[subject] = dict(zip(names, values))
        return found

    def bulk(self, conn: Connection, tenant: str | None, subjects: Sequence[str] | None,
             attributes: Sequence[str]) -> pa.Table:
        """The rows of many subjects (or, with ``subjects=None``, of every subject of the tenant) as Arrow columns
        subject, _protected and the attributes; one row per subject found (the latest), dates as ISO text."""
        if self.custom_bulk is not None:
            return self.custom_bulk(conn, tenant, subjects, attributes)
        if self.custom_lookup is not None:
            subjects = self.all_subjects(conn, tenant) if subjects is None else subjects
            return rows_table(self.custom_lookup(conn, tenant, subjects, attributes), attributes)
        by_tenant = self.tenant_column is not None and tenant is not None
        scan = subjects is None or len(subjects) > SCAN_OVER
        query = self._statement(tuple(attributes), by_tenant, scan=scan)
        params = {"tenant": tenant} if by_tenant else {}
        if scan:  # straight from the driver: the rows of a whole municipality, without a Row object each
            rows = driver_rows(conn, query, params)
        else:
            rows = [tuple(row) for row in conn.execute(query, {**params, "subjects": list(subjects)})]
        wanted = None if subjects is None else set(subjects)
        seen: set[str] = set()
        kept = []
        for row in rows:  # latest first: the first row of a subject is the one answered
            subject = row[0]
            if subject not in seen and (wanted is None or subject in wanted):
                seen.add(subject)
                kept.append(row)
        names = [c.name for c in query.selected_columns]
        values = list(zip(*kept)) if kept else [()] * len(names)
        columns = {"subject": pa.array(values[0], pa.string())}
        protected = names.index("_protected") if "_protected" in names else None
        columns["_protected"] = pa.array([bool(v) for v in values[protected]] if protected is not None
                                         else [False] * len(kept), pa.bool_())
        for name in attributes:
            column = values[names.index(name)]
            kind = query.selected_columns[name].type
            if _python_type(kind) is dt.datetime:  # SQLite's text has a space where isoformat() has a T
                column = [_json_value(dt.datetime.fromisoformat(v) if isinstance(v, str) else v) for v in column]
            elif _is_temporal(kind):
                column = [_json_value(v) for v in column]
            elif _python_type(kind) is bool:  # SQLite's driver gives 0 and 1
                column = [None if v is None else bool(v) for v in column]
            # Typed by the column, not by the values: a column without a value here is still text or a number
            columns[name] = pa.array(column, _ARROW.get(_python_type(kind)))
        return pa.table(columns)

    def _statement(self, attributes: tuple[str, ...], by_tenant: bool, scan: bool = False):
        # Built once per attribute set: statement construction costs more than the indexed lookup itself.
        cache = self.__dict__.setdefault("_statements", {})
        key = (attributes, by_tenant, scan)
        if key not in cache:
            table = self.table
            columns = [table.c[self.attribute(a).column or a].label(a) for a in attributes]
            extra = [table.c.pseudonym.label("_subject")]
            if self.protected_column:
                extra.append(table.c[self.protected_column].label("_protected"))
            query = select(*extra, *columns)
            if not scan:
                query = query.where(table.c.pseudonym.in_(bindparam("subjects", expanding=True)))
            if by_tenant:
                query = query.where(table.c[self.tenant_column] == bindparam("tenant"))
            for column, value in self.filters.items():
                query = query.where(table.c[column] == value)
            if self.order_by:
                query = query.order_by(table.c[self.order_by].desc())
            cache[key] = query
        return cache[key]


def driver_rows(conn: Connection, query, params: dict) -> list[tuple]:
    """A statement's rows as the driver's own tuples (SQLite gives dates as their ISO text, PostgreSQL as dates).
    Reading a municipality through Row objects and result processing cost several times the query."""
    compiled = query.compile(dialect=conn.dialect)
    values = compiled.construct_params(params)
    if conn.dialect.paramstyle == "qmark":
        values = tuple(values[name] for name in compiled.positiontup)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(str(compiled), values)
        return cursor.fetchall()
    finally:
        cursor.close()


def rows_table(found: dict[str, dict], attributes: Sequence[str]) -> pa.Table:
    rows = list(found.items())
    columns = {"subject": pa.array([s for s, _ in rows], pa.string()),
               "_protected": pa.array([bool(r.get("_protected", False)) for _, r in rows], pa.bool_())}
    for name in attributes:
        columns[name] = pa.array([r[name] for _, r in rows])
    return pa.table(columns)


def small_types(table: pa.Table) -> pa.Table:
    """The table with string and list columns (Polars gives large_string and large_list): the types the
    per-subject path answers, so parts of one answer concatenate."""
    def small(t: pa.DataType) -> pa.DataType:
        if pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return pa.string()
        if pa.types.is_large_list(t) or pa.types.is_list(t):
            return pa.list_(small(t.value_type))
        if pa.types.is_struct(t):
            return pa.struct([pa.field(f.name, small(f.type)) for f in t])
        return t
    return table.cast(pa.schema([pa.field(f.name, small(f.type)) for f in table.schema]))


_ARROW = {str: pa.string(), int: pa.int64(), bool: pa.bool_(), float: pa.float64(), dt.date: pa.string(),
          dt.datetime: pa.string()}


def _python_type(column_type):
    try:
        return column_type.python_type
    except NotImplementedError:
        return None


def _is_temporal(column_type) -> bool:
    return _python_type(column_type) in (dt.date, dt.datetime)


def _json_value(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
