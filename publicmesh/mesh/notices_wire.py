"""The Arrow form of ``/v1/notify`` (service → hub) and of ``/v1/notices`` (hub → inbox holder): one IPC stream of
notices, a row each, checked column-wise against the same limits as the JSON form (schemas.Notice).

Provider, purpose and service travel in the schema metadata, inside the body, so the signature's content digest
covers them. The answer is a stream with one boolean column, ``prior_intent``, a row per notice asked.
"""

from __future__ import annotations

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from publicmesh import arrow_ipc

ARROW_STREAM = arrow_ipc.ARROW_STREAM  # the content type of the Arrow form

MAX_NOTICES = 500_000  # per request: a large municipality's eligible households at once (the client splits)
CATEGORIES = ("service-eligibility", "application-decision", "payout", "account-request")
LIMITS = {"key": 128, "title_ja": 200, "title_en": 200, "body_ja": 4000, "body_en": 4000, "link": 200}
REQUIRED = ("subject", "key", "title_ja", "title_en", "body_ja", "body_en")
OPTIONAL = ("link", "category")
PSEUDONYM = r"^[A-Za-z0-9_-]{22}$"
LINK = r"^/(?:[A-Za-z0-9_.#?=&-][A-Za-z0-9/_.#?=&-]*)?$"  # a path on the portal, never //another-host
ROUTING = ("provider", "purpose", "service", "sender")  # the sender is set by the hub, from the signature


class MalformedNotices(ValueError):
    """A body that is not a stream of notices, or a notice past a limit (the message names the row)."""


def request_body(notices: pa.Table, routing: dict[str, str]) -> bytes:
    metadata = {k.encode(): str(routing[k]).encode() for k in ROUTING if k in routing}
    return arrow_ipc.to_bytes(notices.replace_schema_metadata(metadata), max_chunksize=100_000)


def read_request(body: bytes, max_rows: int = MAX_NOTICES) -> tuple[pa.Table, dict[str, str]]:
    """(notices, routing) of a request: string columns, category filled in, every row checked."""
    schema, batches = arrow_ipc.read_batches(body, max_rows, MalformedNotices, "notices")
    table = pa.Table.from_batches(batches, schema)
    metadata = schema.metadata or {}
    routing = {k: metadata.get(k.encode(), b"").decode("utf-8", "replace") for k in ROUTING}
    return checked(table), routing


def checked(table: pa.Table) -> pa.Table:
    """The notices with plain string columns in a fixed order, or MalformedNotices naming the first bad row."""
    unknown = sorted(set(table.column_names) - set(REQUIRED) - set(OPTIONAL))
    missing = [c for c in REQUIRED if c not in table.column_names]
    if unknown or missing:
        raise MalformedNotices(f"columns {list(REQUIRED)} and optionally {list(OPTIONAL)}; "
                               f"missing {missing}, unknown {unknown}")
    if table.num_rows == 0:
        raise MalformedNotices("at least one notice")
    columns = {}
    for name in (*REQUIRED, *OPTIONAL):
        if name not in table.column_names:
            columns[name] = pa.nulls(table.num_rows, pa.string())
            continue
        column = table.column(name)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
                or pa.types.is_string_view(column.type) or pa.types.is_null(column.type)):
            raise MalformedNotices(f"{name} is a string column, not {column.type}")
        columns[name] = column.cast(pa.string())
    columns["category"] = pc.fill_null(columns["category"], CATEGORIES[0])
    out = pa.table(columns)
    _require(out, pc.match_substring_regex(out["subject"], PSEUDONYM), "subject is a 22-character pseudonym")
    for name in REQUIRED[1:]:
        _require(out, pc.is_valid(out[name]), f"{name} is missing")
    for name, limit in LIMITS.items():
        _require(out, pc.less_equal(pc.utf8_length(out[name]), limit), f"{name} is longer than {limit} characters")
    _require(out, pc.greater(pc.utf8_length(out["title_ja"]), 0), "a notice has a Japanese title")
    _require(out, pc.greater(pc.utf8_length(out["title_en"]), 0), "a notice has an English title")
    _require(out, pc.match_substring_regex(out["link"], LINK), "link is a path on the portal")
    _require(out, pc.is_in(out["category"], pa.array(CATEGORIES)), f"category is one of {list(CATEGORIES)}")
    return out


def _require(table: pa.Table, ok: pa.ChunkedArray, rule: str) -> None:
    bad = pc.invert(pc.fill_null(ok, True))  # a null (an absent optional value) passes
    if pc.any(bad).as_py():
        row = pc.index(bad, True).as_py()
        raise MalformedNotices(f"notice {row}: {rule}")


def answer_body(prior_intent: pa.Array, delivered: int) -> bytes:
    return arrow_ipc.to_bytes(pa.table({"prior_intent": prior_intent}).replace_schema_metadata(
        {b"delivered": str(delivered).encode()}))


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
