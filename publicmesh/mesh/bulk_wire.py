"""The Arrow form of a bulk query naming its subjects (member → hub): the subjects as one string column, the rest
of the request (provider, dataset, attributes, purpose) as JSON in the schema metadata, inside the body, so the
signature's content digest covers it. A municipality's residents are sent without a JSON list of millions."""

from __future__ import annotations

import orjson
import pyarrow as pa
from pydantic import ValidationError

from publicmesh.mesh.schemas import BULK_MAX_SUBJECTS, BulkRequest

ARROW_STREAM = "application/vnd.apache.arrow.stream"
COLUMN = "subject"


class MalformedBulk(ValueError):
    """A body that is not a bulk query in the Arrow form."""


def request_body(subjects: pa.Array | pa.ChunkedArray, request: dict) -> bytes:
    table = pa.table({COLUMN: subjects.cast(pa.string())}).replace_schema_metadata(
        {b"request": orjson.dumps(request)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=500_000)
    return sink.getvalue().to_pybytes()


def read_request(body: bytes, max_rows: int = BULK_MAX_SUBJECTS) -> tuple[BulkRequest, pa.ChunkedArray]:
    """(the request without its subjects, the subjects); MalformedBulk, or pydantic's ValidationError."""
    try:
        reader = pa.ipc.open_stream(body)
        schema = reader.schema
        if schema.names != [COLUMN] or not pa.types.is_string(schema.field(COLUMN).type):
            raise MalformedBulk(f"the stream has one string column {COLUMN!r}")
        batches, rows = [], 0
        for batch in reader:  # counted batch by batch, so an oversized request stops early
            rows += batch.num_rows
            if rows > max_rows:
                raise MalformedBulk(f"at most {max_rows:,} subjects in one request")
            batch.validate(full=True)
            batches.append(batch.column(0))
    except (pa.ArrowException, OSError) as exc:  # a stream cut short is an OSError
        raise MalformedBulk(f"not an Arrow IPC stream: {exc}") from None
    if rows == 0:
        raise MalformedBulk("name at least one subject")
    try:
        fields = orjson.loads((schema.metadata or {}).get(b"request", b"null"))
    except orjson.JSONDecodeError:
        raise MalformedBulk("the schema metadata 'request' is a JSON object") from None
    if not isinstance(fields, dict) or {"subjects", "scan"} & fields.keys():
        raise MalformedBulk("the schema metadata 'request' is a JSON object of provider, dataset, attributes and "
                            "purpose (the subjects are the column)")
    request = BulkRequest.model_validate(fields)  # ValidationError: the caller answers it as a problem
    return request, pa.chunked_array(batches, pa.string())


__all__ = ["ARROW_STREAM", "MalformedBulk", "ValidationError", "read_request", "request_body"]
