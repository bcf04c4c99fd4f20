"""The Arrow form of ``/v1/convert``: one IPC stream in (pseudonyms, source and targets), one out (a column per target).

Source and targets travel in the request's schema metadata, inside the body, so the signature's content
digest covers them.
"""

from __future__ import annotations

import orjson
import pyarrow as pa

from publicmesh.protocol import arrow_ipc

ARROW_STREAM = arrow_ipc.ARROW_STREAM  # the content type of the Arrow form
ARROW_MAX_BATCH = 2_000_000
MAX_BATCH = 200_000  # pseudonyms in one JSON /v1/convert request
MAX_TARGETS = 16
COLUMN = "pseudonym"


class MalformedConversion(ValueError):
    """A request or answer body that is not a conversion in the Arrow form."""


def request_body(pseudonyms: pa.Array | pa.ChunkedArray, source: str, targets: tuple[str, ...]) -> bytes:
    metadata = {b"source": source.encode(), b"targets": orjson.dumps(list(targets))}
    return arrow_ipc.to_bytes(pa.table({COLUMN: pseudonyms}).replace_schema_metadata(metadata))


def read_request(body: bytes, max_rows: int = ARROW_MAX_BATCH) -> tuple[pa.ChunkedArray, str, list[str]]:
    """(pseudonyms, source, targets) of a request; MalformedConversion, or OverflowError past ``max_rows``."""
    try:
        reader = pa.ipc.open_stream(body)
        schema = reader.schema
        if schema.names != [COLUMN] or not _is_text(schema.field(COLUMN).type):
            raise MalformedConversion(f"the stream has one string column {COLUMN!r}")
        source, targets = _routing(schema.metadata or {})
        batches, rows = [], 0
        for batch in reader:  # counted batch by batch, so an oversized request stops early
            rows += batch.num_rows
            if rows > max_rows:
                raise OverflowError(f"at most {max_rows} pseudonyms in one conversion")
            batch.validate(full=True)  # offsets inside the data, UTF-8: the decoder reads buffers directly
            batches.append(batch.column(0))
    except (pa.ArrowException, OSError) as exc:  # a stream cut short is an OSError
        raise MalformedConversion(f"not an Arrow IPC stream: {exc}") from None
    return pa.chunked_array(batches, schema.field(COLUMN).type), source, targets


def _routing(metadata: dict) -> tuple[str, list[str]]:
    try:
        source = metadata[b"source"].decode()
        targets = orjson.loads(metadata[b"targets"])
    except (KeyError, UnicodeDecodeError, orjson.JSONDecodeError):
        raise MalformedConversion("the schema metadata names a source and a JSON list of targets") from None
    if (
        not source
        or not isinstance(targets, list)
        or not targets
        or len(targets) > MAX_TARGETS
        or not all(isinstance(t, str) and t for t in targets)
    ):
        raise MalformedConversion(f"targets is a list of 1 to {MAX_TARGETS} domain names")
    return source, list(dict.fromkeys(targets))


def answer_body(converted: dict[str, pa.Array]) -> memoryview:
    return arrow_ipc.to_body(pa.table(converted))


def read_answer(body: bytes, targets: tuple[str, ...], rows: int) -> dict[str, pa.Array]:
    """The converted columns of an answer, checked against what was asked."""
    try:
        table = pa.ipc.open_stream(body).read_all()
    except (pa.ArrowException, OSError) as exc:
        raise MalformedConversion(f"the answer is not an Arrow IPC stream: {exc}") from None
    missing = [t for t in targets if t not in table.column_names or not _is_text(table.schema.field(t).type)]
    if missing or table.num_rows != rows:
        raise MalformedConversion(
            f"the answer has {table.num_rows} rows of {table.column_names}, not {rows} of {list(targets)}"
        )
    return {t: table.column(t).combine_chunks() for t in targets}


def _is_text(data_type: pa.DataType) -> bool:
    return pa.types.is_string(data_type) or pa.types.is_large_string(data_type)
