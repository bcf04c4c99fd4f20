"""Arrow IPC streams as HTTP bodies, for every part: a table written to bytes, and a body read back batch by batch
(counted, so an oversized request stops early, and validated, since decoders read the buffers directly)."""

from __future__ import annotations

import pyarrow as pa

ARROW_STREAM = "application/vnd.apache.arrow.stream"


def to_bytes(table: pa.Table, max_chunksize: int | None = None) -> bytes:
    return to_body(table, max_chunksize).tobytes()


def to_body(table: pa.Table, max_chunksize: int | None = None) -> memoryview:
    """The stream as an answer's body, not copied into bytes (Starlette sends a memoryview as it is): a
    municipality's answer is held once, not twice, while it is signed and sent. Its size is counted first, so it is
    written into one buffer of that size instead of one that grows by copying (half the time, and no memory
    touched twice)."""
    counted = pa.MockOutputStream()
    _write(counted, table, max_chunksize)
    body = pa.allocate_buffer(counted.size())
    _write(pa.FixedSizeBufferWriter(body), table, max_chunksize)
    return memoryview(body)


def _write(sink, table: pa.Table, max_chunksize: int | None) -> None:
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=max_chunksize)


def read_batches(
    body: bytes, max_rows: int, malformed: type[ValueError], rows_are: str = "rows"
) -> tuple[pa.Schema, list[pa.RecordBatch]]:
    """The stream's schema and batches, each fully validated; ``malformed`` (the caller's error) when the body is
    not a stream, is cut short, or holds more than ``max_rows`` (named ``rows_are`` in the message)."""
    try:
        reader = pa.ipc.open_stream(body)
        batches, rows = [], 0
        for batch in reader:
            rows += batch.num_rows
            if rows > max_rows:
                raise malformed(f"at most {max_rows:,} {rows_are} in one request")
            batch.validate(full=True)
            batches.append(batch)
    except (pa.ArrowException, OSError) as exc:  # a stream cut short is an OSError
        raise malformed(f"not an Arrow IPC stream: {exc}") from None
    return reader.schema, batches
