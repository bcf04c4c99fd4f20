"""Datasets an agency publishes: attributes with JSON schemas, looked up by the agency's own pseudonym."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
from sqlalchemy import Connection, Table, bindparam, select

from publicmesh.provider.reads import StoreReads
from publicmesh.storage import columnar

FEW = 256  # subjects up to which a list's rows are matched in Python (see _answered_few)
SCAN_OVER = 5_000  # subjects in one lookup above which the tenant is scanned instead of listing them
# ... unless they are a small share of the tenant's rows as its last scan counted them (StoreReads.joins): then
# looked up by the key through a temporary table. Measured on a municipality of 2,000,000: 220,000 names in
# 0.47 s, 0.9 s scanned.


@dataclass(frozen=True)
class Attribute:
    """One published data item (データ項目)."""

    name: str
    schema: dict
    title_ja: str
    title_en: str
    category: str = "general"  # "address" items are withheld for protected persons
    column: str | None = None


Lookup = Callable[[Connection, str | None, Sequence[str], Sequence[str]], dict[str, dict]]
# (conn, tenant, subjects or None for every subject, attributes, wire, *, reads: StoreReads) → Arrow table:
# subject, _protected, attributes (as Dataset.bulk answers)
BulkLookup = Callable[..., pa.Table]


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
    order_by: str | None = None  # a subject's rows in this order, the latest last (e.g. by fiscal year)
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
            "properties": {
                a.name: {**a.schema, "title": a.title_en, "description": a.title_ja} for a in self.attributes
            },
            "additionalProperties": False,
        }

    def describe(self) -> dict:
        return {
            "name": self.name,
            "title_ja": self.title_ja,
            "title_en": self.title_en,
            "attributes": [
                {
                    "name": a.name,
                    "title_ja": a.title_ja,
                    "title_en": a.title_en,
                    "category": a.category,
                    "schema": a.schema,
                }
                for a in self.attributes
            ],
            "pseudonym_paths": self.pseudonym_paths,
            "schema": self.json_schema(),
        }

    def lookup(
        self, conn: Connection, tenant: str | None, subjects: Sequence[str], attributes: Sequence[str]
    ) -> dict[str, dict]:
        """Rows for the subjects found, keyed by pseudonym; ``_protected`` marks address protection."""
        if self.custom_lookup is not None:
            return self.custom_lookup(conn, tenant, subjects, attributes)
        # A request for a large share of a municipality reads it in one scan, filtered here: an IN list of a
        # hundred thousand pseudonyms costs far more to build and plan than reading the tenant's rows.
        wanted = set(subjects) if len(subjects) > SCAN_OVER else None
        query = self._statement(
            tuple(attributes), self.tenant_column is not None and tenant is not None, scan=wanted is not None
        )
        params = {} if wanted is not None else {"subjects": list(subjects)}
        if self.tenant_column and tenant is not None:
            params["tenant"] = tenant
        found: dict[str, dict] = {}
        result = conn.execute(query, params)
        names = list(result.keys())[1:]
        dated = [i for i, column in enumerate(query.selected_columns[1:]) if _is_temporal(column.type)]
        for row in result:  # plain tuples: the mapping view per row costs more than the values
            subject = row[0]
            if wanted is not None and subject not in wanted:
                continue  # not asked for (a subject's later row, which is newer, takes the place of the one before)
            values = list(row[1:])
            for i in dated:
                values[i] = _json_value(values[i])
            found[subject] = dict(zip(names, values))
        return found

    def bulk(
        self,
        conn: Connection,
        tenant: str | None,
        subjects: Sequence[str] | pa.ChunkedArray | None,
        attributes: Sequence[str],
        *,
        wire: bool = False,
        reads: StoreReads | None = None,
    ) -> pa.Table:
        """The rows of many subjects (or, with ``subjects=None``, of every subject of the tenant) as Arrow columns
        subject, _protected and the attributes; one row per subject found (the latest), dates as ISO text. The
        subjects may be an Arrow column (the hub's bulk_wire): a list is made of it only where one is read.
        ``wire``: as the node sends it to the hub: where the rows are found by matching them, a column ``i`` as
        well, each row's position in ``subjects`` (see answered); a custom bulk may name the answer's own subjects by
        their rows (bulk_wire.as_rows_of_answer). ``reads``: what the node's reads share (gathered scans, the tenant
        sizes that choose a join); without it, this read shares nothing."""
        reads = reads if reads is not None else StoreReads()
        if isinstance(subjects, (pa.Array, pa.ChunkedArray)) and (
            len(subjects) <= SCAN_OVER
            or not columnar.supports(conn.engine)
            or (self.custom_bulk is None and self.custom_lookup is not None)
        ):
            subjects = subjects.to_pylist()
        if self.custom_bulk is not None:
            return self.custom_bulk(conn, tenant, subjects, attributes, wire, reads=reads)
        if self.custom_lookup is not None:
            subjects = self.all_subjects(conn, tenant) if subjects is None else subjects
            return rows_table(self.custom_lookup(conn, tenant, subjects, attributes), attributes)
        by_tenant = self.tenant_column is not None and tenant is not None
        params = {"tenant": tenant} if by_tenant else {}
        if subjects is not None and (len(subjects) <= SCAN_OVER or not columnar.supports(conn.engine)):
            query = self._statement(tuple(attributes), by_tenant)
            rows = [tuple(row) for row in conn.execute(query, {**params, "subjects": list(subjects)})]
            return answered(
                _typed(query, attributes, _row_columns(query, rows)),
                subjects,
                self._keyed(by_tenant),
                self.order_by is not None,
                wire,
            )
        if subjects is not None and (not by_tenant or reads.joins(self.name, tenant, len(subjects))):
            # Not scoped to a municipality, or a small share of one: the asked subjects are looked up by the key
            # (joined), not the whole country or municipality read.
            query = self._statement(tuple(attributes), by_tenant, joined=True)
            table = columnar.read_arrow(conn, query, params, asked=subjects)
        elif columnar.supports(conn.engine):
            # A municipality, or a large share of one, in one read of the tenant's (contiguous) rows straight into
            # Arrow: an IN list of a hundred thousand pseudonyms costs far more to build and plan than the scan.
            query = self._statement(tuple(attributes), by_tenant, scan=True)
            if by_tenant and not self.filters and not self.order_by:  # read with the table's other scans
                table = self._scanned_with_others(conn, tenant, attributes, reads)
            else:
                table = columnar.read_arrow(conn, query, params)
            if by_tenant:
                reads.scanned(self.name, tenant, table.num_rows)
        else:  # an in-memory SQLite: no second connection sees it
            query = self._statement(tuple(attributes), by_tenant, scan=True)
            table = _row_columns(query, [tuple(row) for row in conn.execute(query, params)])
        return answered(
            _typed(query, attributes, table), subjects, self._keyed(by_tenant), self.order_by is not None, wire
        )

    def _scanned_with_others(
        self, conn: Connection, tenant: str, attributes: Sequence[str], reads: StoreReads
    ) -> pa.Table:
        """The tenant's rows as the scan statement selects them, read together with the other scans of the same table
        and tenant asked at the same moment (StoreReads.tenant_rows)."""
        columns = {
            "_subject": "pseudonym",
            **({"_protected": self.protected_column} if self.protected_column else {}),
            **{a: self.attribute(a).column or a for a in attributes},
        }
        rows = reads.tenant_rows(conn, self.table, self.tenant_column, tenant, list(dict.fromkeys(columns.values())))
        return pa.table({name: rows.column(column) for name, column in columns.items()})

    def _keyed(self, by_tenant: bool) -> bool:
        """Whether the primary key allows one row per subject only (of the tenant): then none is older."""
        key = {c.name for c in self.table.primary_key.columns}
        return "pseudonym" in key and key <= {"pseudonym", self.tenant_column if by_tenant else "pseudonym"}

    def _statement(self, attributes: tuple[str, ...], by_tenant: bool, scan: bool = False, joined: bool = False):
        """The rows of the attributes: of the listed ``subjects``, of every subject (``scan``), or of the subjects
        in the temporary table columnar.ASKED (``joined``)."""
        # Built once per attribute set: statement construction costs more than the indexed lookup itself.
        cache = self.__dict__.setdefault("_statements", {})
        key = (attributes, by_tenant, scan, joined)
        if key not in cache:
            table = self.table
            columns = [table.c[self.attribute(a).column or a].label(a) for a in attributes]
            extra = [table.c.pseudonym.label("_subject")]
            if self.protected_column:
                extra.append(table.c[self.protected_column].label("_protected"))
            query = select(*extra, *columns)
            if joined:
                query = query.select_from(columnar.ASKED.join(table, table.c.pseudonym == columnar.ASKED.c.pseudonym))
            elif not scan:
                query = query.where(table.c.pseudonym.in_(bindparam("subjects", expanding=True)))
            if by_tenant:
                query = query.where(table.c[self.tenant_column] == bindparam("tenant"))
            for column, value in self.filters.items():
                query = query.where(table.c[column] == value)
            if self.order_by:  # the primary key read forwards, without a sort: each subject's latest row is its last
                # (not the key read backwards, latest first: the disk reads ahead only forwards, and a municipality
                # not read for a while was read backwards at 1.95 s per 100 MB, forwards at 0.14 s)
                query = query.order_by(table.c.pseudonym, table.c[self.order_by])
            cache[key] = query
        return cache[key]


def _row_columns(query, rows: list[tuple]) -> pa.Table:
    """Driver rows of a statement as Arrow columns named as it selects them, dates and times as ISO text."""
    columns = {}
    for k, column in enumerate(query.selected_columns):
        values = [row[k] for row in rows]
        if _python_type(column.type) is dt.datetime:  # SQLite's text has a space where isoformat() has a T
            values = [_json_value(dt.datetime.fromisoformat(v) if isinstance(v, str) else v) for v in values]
        elif _is_temporal(column.type):
            values = [_json_value(v) for v in values]
        columns[column.name] = pa.array(values)
    return pa.table(columns)


def _typed(query, attributes: Sequence[str], table: pa.Table) -> pa.Table:
    """subject, _protected and the attributes, typed by the columns rather than by the values (a column without
    a value here is still text or a number), with dates and times as their ISO text."""
    columns = {"subject": table.column("_subject").cast(pa.string())}
    if "_protected" in table.column_names:  # SQLite's driver gives 0 and 1
        columns["_protected"] = table.column("_protected").cast(pa.bool_()).fill_null(False)
    else:
        columns["_protected"] = pa.array([False] * table.num_rows, pa.bool_())
    for name in attributes:
        column, kind = table.column(name), _python_type(query.selected_columns[name].type)
        if kind is dt.datetime and not pa.types.is_string(column.type) and not pa.types.is_null(column.type):
            column = pa.array([_json_value(v) for v in column.to_pylist()], pa.string())
        elif kind is dt.datetime and pa.types.is_string(column.type):  # SQLite's text: see _row_columns
            column = pa.array(
                [_json_value(dt.datetime.fromisoformat(v)) if v else v for v in column.to_pylist()], pa.string()
            )
        elif kind is dt.date and not pa.types.is_string(column.type):
            column = column.cast(pa.string())  # a date32 casts to its ISO text
        columns[name] = column.cast(_ARROW[kind]) if kind in _ARROW else column
    return pa.table(columns)


def answered(
    table: pa.Table,
    subjects: Sequence[str] | pa.ChunkedArray | None,
    keyed: bool,
    grouped: bool,
    positions: bool = False,
) -> pa.Table:
    """The asked subjects' rows (all, for a scan), one per subject, in the order read; with ``positions``, each
    row's position in ``subjects`` as column ``i`` (the last, where a subject is asked twice). ``keyed``: the rows
    are one per subject already; ``grouped``: a subject's rows are next to each other, oldest first (the statement
    orders by subject, then Dataset.order_by), so its latest is the one whose subject differs from the row after;
    otherwise a subject's first row is kept. One hash join against the asked subjects keeps the asked rows and
    finds their positions (Polars hashes a municipality's pseudonyms several times faster than Arrow's is_in and
    index_in)."""
    if subjects is not None and len(subjects) <= FEW and not isinstance(subjects, pa.ChunkedArray):
        return _answered_few(table, subjects, keyed, grouped, positions)
    import polars as pl  # noqa: PLC0415 (heavy: loaded by the first bulk read, not by every importer)

    subject = pl.Series("subject", table.column("subject"), dtype=pl.Utf8)
    chosen = None  # each subject's one row
    if not keyed:
        chosen = subject.ne_missing(subject.shift(-1)) if grouped else subject.is_first_distinct()
    if subjects is None:
        return table if chosen is None or chosen.all() else table.filter(chosen.to_arrow())
    rows = subject.to_frame().with_row_index("row")
    if chosen is not None:
        rows = rows.filter(chosen)
    asked = pl.Series("subject", subjects, dtype=pl.Utf8).to_frame().with_row_index("i")
    found = rows.join(asked, on="subject", how="inner", maintain_order="left").select("row", "i")
    if found["row"].ne_missing(found["row"].shift(1)).not_().any():  # a subject asked twice: its last position
        found = found.group_by("row", maintain_order=True).agg(pl.col("i").max())
    kept = table.take(found["row"].to_arrow())
    return kept.append_column("i", found["i"].cast(pl.Int32).to_arrow()) if positions else kept


def _answered_few(table: pa.Table, subjects: Sequence[str], keyed: bool, grouped: bool, positions: bool) -> pa.Table:
    """answered for a short list (the hub's shared reads): the same rows and positions, found in a dict; the hash
    join's fixed cost was most of the time of a bulk read of ten subjects (~1 ms)."""
    names = table.column("subject").to_pylist()
    if keyed:
        chosen: Sequence[int] = range(len(names))
    elif grouped:  # a subject's latest row is its last: the one whose subject differs from the next row's
        chosen = [k for k in range(len(names)) if k + 1 == len(names) or names[k] != names[k + 1]]
    else:
        first: dict[str, int] = {}
        for k, name in enumerate(names):
            first.setdefault(name, k)
        chosen = sorted(first.values())
    last = {subject: i for i, subject in enumerate(subjects)}  # a subject asked twice: its last position
    found = [(k, last[names[k]]) for k in chosen if names[k] in last]
    kept = table.take(pa.array([k for k, _ in found], pa.int64()))
    return kept.append_column("i", pa.array([i for _, i in found], pa.int32())) if positions else kept


def rows_table(found: dict[str, dict], attributes: Sequence[str]) -> pa.Table:
    rows = list(found.items())
    columns = {
        "subject": pa.array([s for s, _ in rows], pa.string()),
        "_protected": pa.array([bool(r.get("_protected", False)) for _, r in rows], pa.bool_()),
    }
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


_ARROW = {
    str: pa.string(),
    int: pa.int64(),
    bool: pa.bool_(),
    float: pa.float64(),
    dt.date: pa.string(),
    dt.datetime: pa.string(),
}


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
