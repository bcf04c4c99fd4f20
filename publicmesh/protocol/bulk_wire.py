"""The Arrow form of a bulk query naming its subjects (member → hub, and hub → provider): the subjects as one
string column, the rest of the request (to the hub provider, dataset, attributes and purpose; to a provider member,
dataset and attributes) as JSON in the schema metadata, inside the body, so the signature's content digest covers
it. A municipality's residents are sent without a JSON list of millions."""

from __future__ import annotations

import orjson
import pyarrow as pa

from publicmesh.protocol import arrow_ipc
from publicmesh.protocol.schemas import BULK_MAX_SUBJECTS, BulkRequest

ARROW_STREAM = arrow_ipc.ARROW_STREAM  # the content type of the Arrow form

COLUMN = "subject"
# A provider's answer may give a pseudonym attribute (e.g. a household's head) as the row number, in the same answer,
# of the person it names: the hub then reads the person's pseudonym off that row instead of converting it again,
# and the person is named in the exchange record already, as a subject of the answer. Marked in the field's metadata.
_ROWS = {b"publicmesh:pseudonym": b"row-of-answer"}


class MalformedBulk(ValueError):
    """A body that is not a bulk query in the Arrow form."""


def request_body(subjects: pa.Array | pa.ChunkedArray, request: dict) -> bytes:
    table = pa.table({COLUMN: subjects.cast(pa.string())}).replace_schema_metadata({b"request": orjson.dumps(request)})
    return arrow_ipc.to_bytes(table, max_chunksize=500_000)


def read_request(body: bytes, max_rows: int = BULK_MAX_SUBJECTS) -> tuple[BulkRequest, pa.ChunkedArray]:
    """(the request without its subjects, the subjects); MalformedBulk, or pydantic's ValidationError."""
    fields, subjects = read_subjects(body, max_rows)
    return BulkRequest.model_validate(fields), subjects  # ValidationError: the caller answers it as a problem


def read_subjects(body: bytes, max_rows: int) -> tuple[dict, pa.ChunkedArray]:
    """(the request's other fields, its subjects) of any bulk query in the Arrow form: a member's to the hub, or
    the hub's to a provider (member, dataset, attributes); MalformedBulk."""
    schema, batches = arrow_ipc.read_batches(body, max_rows, MalformedBulk, "subjects")
    if schema.names != [COLUMN] or not pa.types.is_string(schema.field(COLUMN).type):
        raise MalformedBulk(f"the stream has one string column {COLUMN!r}")
    if sum(b.num_rows for b in batches) == 0:
        raise MalformedBulk("name at least one subject")
    try:
        fields = orjson.loads((schema.metadata or {}).get(b"request", b"null"))
    except orjson.JSONDecodeError:
        raise MalformedBulk("the schema metadata 'request' is a JSON object") from None
    if not isinstance(fields, dict) or {"subjects", "scan"} & fields.keys():
        raise MalformedBulk(
            "the schema metadata 'request' is a JSON object of the request's fields but its "
            "subjects (they are the column)"
        )
    return fields, pa.chunked_array([b.column(0) for b in batches], pa.string())


def as_rows_of_answer(table: pa.Table, name: str) -> pa.Table:
    """The table with column ``name`` (row numbers of the table, int32) marked as standing for those rows' subjects."""
    at = table.schema.get_field_index(name)
    return table.set_column(at, pa.field(name, pa.int32(), metadata=_ROWS), table.column(name).cast(pa.int32()))


def names_rows_of_answer(field: pa.Field) -> bool:
    """Whether a column of an answer holds row numbers of the answer in place of pseudonyms (as_rows_of_answer)."""
    return (field.metadata or {}).get(b"publicmesh:pseudonym") == _ROWS[b"publicmesh:pseudonym"]
