"""SQLite stores read into Arrow through ADBC in a process of their own: ``python -m publicmesh.storage.sqlite_reader``.

The ADBC driver carries its own copy of SQLite. Two copies in one process break SQLite's locking (POSIX locks
belong to the process, so each copy takes itself for the only connection: it resets the shared WAL index, and on
closing checkpoints and deletes the write-ahead log another connection is still writing to). Here a commit made
through SQLAlchemy's sqlite3 then stayed invisible to ADBC. So a process that uses sqlite3 never opens a store
through ADBC itself: it asks this reader, which speaks length-prefixed frames on stdin and stdout.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path
from typing import IO, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

# The driver types each column by the values of its first batch: a column that is NULL throughout the first
# batch and text later fails. One batch for the whole answer types every column by all its values.
_BATCH_ROWS = str(1 << 30)
_FRAME = struct.Struct("!Q")


def pipes(process: subprocess.Popen) -> tuple[IO[bytes], IO[bytes]]:
    """A child's standard input and output (start_child opens both)."""
    assert process.stdin is not None and process.stdout is not None
    return process.stdin, process.stdout


def write_frame(stream: IO[bytes], payload: bytes, *more) -> None:
    """One frame of the payload and ``more`` parts after it (buffers, written as they are: no joined copy)."""
    stream.write(_FRAME.pack(len(payload) + sum(len(memoryview(part)) for part in more)))
    for part in (payload, *more):
        stream.write(part)
    stream.flush()


def read_frame(stream: IO[bytes]) -> bytes | None:
    """The next frame, or None at the end of the stream."""
    header = stream.read(_FRAME.size)
    if len(header) < _FRAME.size:
        return None
    size = _FRAME.unpack(header)[0]
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError("the stream ended inside a frame")
    return payload


def start_child(module: str) -> subprocess.Popen:
    """``python -m module`` of this package as a child speaking frames on its stdin and stdout: the same code as
    this process runs, wherever it was imported from."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")])
        ),
    }
    return subprocess.Popen([sys.executable, "-m", module], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)


def read(path: str, sql: str, params: tuple, asked: pa.Array | None, asked_table: str) -> pa.Table:
    """One statement's answer; ``asked`` pseudonyms are first put, once each and sorted, in a temporary table."""
    import adbc_driver_sqlite.dbapi as driver  # noqa: PLC0415 - in the child only: the parent uses sqlite3

    with driver.connect(path, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout=10000")  # the node's own writes (outbox) may hold the lock
        if asked is not None:
            values = pc.unique(asked)
            cursor.adbc_ingest(
                asked_table,
                pa.table({"pseudonym": values.take(pc.sort_indices(values))}),
                mode="create",
                temporary=True,
            )
        cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": _BATCH_ROWS})
        cursor.execute(sql, params or None)
        return cursor.fetch_arrow_table()


def write_answer(stream: BinaryIO, table: pa.Table) -> int | None:
    """The table as one frame. On Linux its Arrow IPC stream goes to an anonymous shared-memory file, which the
    parent maps where it lies (b"fd" and the file's descriptor here: no copy through the pipe, none in the parent);
    the caller closes the file once the parent has mapped it, and the descriptor is returned for that. Elsewhere the
    stream follows b"ok" in the frame, written straight to the pipe (counted first, for the frame's length)."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("publicmesh-sqlite-answer", os.MFD_CLOEXEC)
        with pa.OSFile(f"/proc/self/fd/{fd}", mode="wb") as shared:
            _ipc(shared, table)
        write_frame(stream, b"fd" + str(fd).encode())
        return fd
    counted = pa.MockOutputStream()
    _ipc(counted, table)
    stream.write(_FRAME.pack(2 + counted.size()) + b"ok")
    _ipc(stream, table)
    stream.flush()
    return None


def _ipc(sink, table: pa.Table) -> None:
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def main() -> None:
    """Serve requests until the parent closes stdin (it also does so by dying)."""
    requests, answers = sys.stdin.buffer, os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr  # nothing but frames on the answer stream
    shared = None  # the last answer's file: the parent has mapped it once it asks again
    while (frame := read_frame(requests)) is not None:
        if shared is not None:
            os.close(shared)
            shared = None
        try:
            table = read(*pickle.loads(frame))
        except Exception as exc:  # the parent raises it, with the driver's message
            write_frame(answers, b"er" + f"{type(exc).__name__}: {exc}".encode())
            continue
        shared = write_answer(answers, table)
        del table


if __name__ == "__main__":
    main()
