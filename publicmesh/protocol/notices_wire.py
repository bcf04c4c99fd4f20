"""The Arrow form of ``/v1/notify`` (service → hub) and of ``/v1/notices`` (hub → inbox holder): one IPC stream of
notices, a row each, checked column-wise against the same limits as the JSON form (schemas.Notice).

Provider, purpose and service travel in the schema metadata, inside the body, so the signature's content digest
covers them. The answer is a stream with one boolean column, ``prior_intent``, a row per notice asked.
"""

from __future__ import annotations

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from publicmesh.protocol import arrow_ipc

ARROW_STREAM = arrow_ipc.ARROW_STREAM  # the content type of the Arrow form

MAX_NOTICES = 500_000  # per request: a large municipality's eligible households at once (the client splits)
CATEGORIES = ("service-eligibility", "application-decision", "payout", "account-request")
LIMITS = {"key": 128, "title_ja": 200, "title_en": 200, "body_ja": 4000, "body_en": 4000, "link": 200}
REQUIRED = ("subject", "key", "title_ja", "title_en", "body_ja", "body_en")
OPTIONAL = ("link", "category")
PSEUDONYM = r"^[A-Za-z0-9_-]{22}$"
LINK = r"^/(?:[A-Za-z0-9_.#?=&-][A-Za-z0-9/_.#?=&-]*)?$"  # a path on the portal, never //another-host
TEXTS = ("title_ja", "title_en", "body_ja", "body_en", "category")  # dictionary-encoded (checked)
ROUTING = ("provider", "purpose", "service", "sender")  # the sender is set by the hub, from the signature


class MalformedNotices(ValueError):
    """A body that is not a stream of notices, or a notice past a limit (the message names the row)."""


def request_body(notices: pa.Table, routing: dict[str, str]) -> bytes:
    metadata = {k.encode(): str(routing[k]).encode() for k in ROUTING if k in routing}
    return arrow_ipc.to_bytes(notices.replace_schema_metadata(metadata), max_chunksize=100_000)


def read_request(body: bytes, max_rows: int = MAX_NOTICES) -> tuple[pa.Table, dict[str, str]]:
    """(notices, routing) of a request: string columns, category filled in, every row checked."""
    table, routing = read_unchecked(body, max_rows)
    return checked(table), routing


def read_unchecked(body: bytes, max_rows: int = MAX_NOTICES) -> tuple[pa.Table, dict[str, str]]:
    """(notices, routing) of a request, the rows not yet checked: the hub authorises the routing first."""
    schema, batches = arrow_ipc.read_batches(body, max_rows, MalformedNotices, "notices")
    table = pa.Table.from_batches(batches, schema)
    metadata = schema.metadata or {}
    return table, {k: metadata.get(k.encode(), b"").decode("utf-8", "replace") for k in ROUTING}


def checked(table: pa.Table) -> pa.Table:
    """The notices in a fixed order of columns, or MalformedNotices naming the first bad row. What the notices say
    (TEXTS) comes dictionary-encoded, as it may be sent: a service's notices to a municipality share a few titles
    and bodies, held and checked once each; subject, key and link are plain strings."""
    unknown = sorted(set(table.column_names) - set(REQUIRED) - set(OPTIONAL))
    missing = [c for c in REQUIRED if c not in table.column_names]
    if unknown or missing:
        raise MalformedNotices(
            f"columns {list(REQUIRED)} and optionally {list(OPTIONAL)}; missing {missing}, unknown {unknown}"
        )
    if table.num_rows == 0:
        raise MalformedNotices("at least one notice")
    columns = {}
    for name in (*REQUIRED, *OPTIONAL):
        column = (
            table.column(name)
            if name in table.column_names
            else pa.chunked_array([pa.nulls(table.num_rows, pa.string())])
        )
        if name in TEXTS:
            columns[name] = _dictionary(name, column)
        elif _is_string(column.type):
            columns[name] = column.cast(pa.string()).combine_chunks()
        else:
            raise MalformedNotices(f"{name} is a string column, not {column.type}")
    if columns["category"].null_count:
        columns["category"] = _dictionary(
            "category", pc.fill_null(columns["category"].cast(pa.string()), CATEGORIES[0])
        )
    out = pa.table(columns)
    _require(out, pc.match_substring_regex(out["subject"], PSEUDONYM), "subject is a 22-character pseudonym")
    for name in REQUIRED[1:]:
        _require(out, pc.is_valid(out[name]), f"{name} is missing")
    for name, limit in LIMITS.items():
        _require(
            out,
            _each(out[name], lambda v, limit=limit: pc.less_equal(pc.utf8_length(v), limit)),
            f"{name} is longer than {limit} characters",
        )
    _require(out, _each(out["title_ja"], lambda v: pc.greater(pc.utf8_length(v), 0)), "a notice has a Japanese title")
    _require(out, _each(out["title_en"], lambda v: pc.greater(pc.utf8_length(v), 0)), "a notice has an English title")
    _require(out, pc.match_substring_regex(out["link"], LINK), "link is a path on the portal")
    _require(
        out,
        _each(out["category"], lambda v: pc.is_in(v, pa.array(CATEGORIES))),
        f"category is one of {list(CATEGORIES)}",
    )
    return out


def _is_string(kind: pa.DataType) -> bool:
    return (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_string_view(kind)
        or pa.types.is_null(kind)
    )


def _dictionary(name: str, column: pa.ChunkedArray) -> pa.DictionaryArray:
    """The column as one dictionary array of strings (int32 indices), whether it came as strings or encoded."""
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column])
    if pa.types.is_dictionary(column.type):
        if not _is_string(column.type.value_type):
            raise MalformedNotices(f"{name} is a dictionary of strings, not of {column.type.value_type}")
        column = column.unify_dictionaries().combine_chunks()
        if column.dictionary.null_count:  # a null among the values: a missing text, seen in the rows once decoded
            column = pc.dictionary_encode(column.cast(pa.string()))
        return pa.DictionaryArray.from_arrays(column.indices.cast(pa.int32()), column.dictionary.cast(pa.string()))
    if not _is_string(column.type):
        raise MalformedNotices(f"{name} is a string column, not {column.type}")
    encoded = pc.dictionary_encode(column.cast(pa.string())).combine_chunks()
    return pa.DictionaryArray.from_arrays(encoded.indices.cast(pa.int32()), encoded.dictionary)


def _each(column: pa.ChunkedArray, test) -> pa.ChunkedArray:
    """test(values) for every row: of a dictionary column, the test of each distinct value, taken for its rows."""
    if pa.types.is_dictionary(column.type):
        return pa.chunked_array([pc.take(test(chunk.dictionary), chunk.indices) for chunk in column.chunks])
    return test(column)


def _require(table: pa.Table, ok: pa.ChunkedArray, rule: str) -> None:
    bad = pc.invert(pc.fill_null(ok, True))  # a null (an absent optional value) passes
    if pc.any(bad).as_py():
        row = pc.index(bad, True).as_py()
        raise MalformedNotices(f"notice {row}: {rule}")


def answer_body(prior_intent: pa.Array, delivered: int) -> bytes:
    return arrow_ipc.to_bytes(
        pa.table({"prior_intent": prior_intent}).replace_schema_metadata({b"delivered": str(delivered).encode()})
    )


def read_answer(body: bytes, rows: int) -> tuple[pa.Array, int]:
    """(prior_intent, delivered) of an answer about ``rows`` notices."""
    try:
        table = pa.ipc.open_stream(body).read_all()
    except (pa.ArrowException, OSError) as exc:
        raise MalformedNotices(f"the answer is not an Arrow IPC stream: {exc}") from None
    if table.column_names != ["prior_intent"] or table.num_rows != rows or table.schema.field(0).type != pa.bool_():
        raise MalformedNotices(f"the answer has {table.num_rows} rows of {table.column_names}, not {rows} flags")
    delivered = orjson.loads((table.schema.metadata or {}).get(b"delivered", b"0"))
    return table.column(0).combine_chunks(), int(delivered)
