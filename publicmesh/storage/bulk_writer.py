"""Many rows written into a SQLite store by a process of its own, the bulk writer: ``python -m
publicmesh.storage.bulk_writer`` (a municipality's offers by the services part, its notices by the portal).

The ADBC driver binds the rows from Arrow columns in C, with no Python object per row, and its SQLite is a newer
build than Python's (3.53 with lookaside memory; Debian's 3.40 has none and zeroes what it frees): 1,300,000 offers
took about 3.3 CPU-s there and 5.5 through sqlite3. The driver carries its own copy of SQLite, which must not open a
store in a process that uses sqlite3 (see agencies/sqlite_reader), hence the process. It speaks sqlite_reader's
frames: a request is a frame naming the store and the statement, then an Arrow stream of the rows it is executed
for, in one transaction; the answer is how many rows it changed.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
from typing import Any

import pyarrow as pa

from publicmesh.storage.sqlite_reader import pipes, read_frame, start_child, write_frame

_COUNT = struct.Struct("!q")
# As storage's engines have them (WAL is the file's own mode already). No larger page cache: unlike sqlite3's,
# this build wrote 1,300,000 offers as fast with SQLite's 2 MB as with 64 or 256 MB.
_PRAGMAS = ("PRAGMA busy_timeout=10000", "PRAGMA synchronous=NORMAL")


_open: dict[str, tuple[int, Any]] = {}  # path → (the file's inode, a connection kept open: its cache stays warm)


def _connection(path: str):
    """The open connection to the store at ``path``, or a new one (also when another file took its place)."""
    import adbc_driver_sqlite.dbapi as driver  # noqa: PLC0415 - in the child only: the parent uses sqlite3

    inode = os.stat(path).st_ino
    kept = _open.get(path)
    if kept is not None and kept[0] == inode:
        return kept[1]
    if kept is not None:
        kept[1].close()
    conn = driver.connect(path, autocommit=True)
    with conn.cursor() as cursor:
        for pragma in _PRAGMAS:
            cursor.execute(pragma)
    _open[path] = (inode, conn)
    return conn


def write(path: str, statement: str, rows: pa.Table, cache_kib: int | None = None) -> int:
    """The statement executed for every row, in one transaction; how many rows it changed. ``cache_kib``: the
    connection's page cache from now on (kept with the connection, so the next batch finds the pages)."""
    with _connection(path).cursor() as cursor:
        if cache_kib:
            cursor.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
        cursor.execute("BEGIN IMMEDIATE")
        try:
            cursor.executemany(statement, rows)
            changed = cursor.rowcount
            cursor.execute("COMMIT")  # acknowledged once committed: durable as the store's other writes
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
    return changed


def main() -> None:
    """Serve requests until the parent closes stdin (it also does so by dying)."""
    requests, answers = sys.stdin.buffer, os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr  # nothing but frames on the answer stream
    while (frame := read_frame(requests)) is not None:
        path, statement, cache_kib = pickle.loads(frame)
        rows = pa.ipc.open_stream(requests).read_all()  # read whole even if the statement fails: the next request
        try:
            write_frame(answers, b"ok" + _COUNT.pack(write(path, statement, rows, cache_kib)))
        except Exception as exc:  # the parent raises it, with the driver's message
            write_frame(answers, b"er" + f"{type(exc).__name__}: {exc}".encode())
        del rows


class BulkWriter:
    """The client of one writer process, a child of the part using it (started on first use, again if it died);
    one request at a time."""

    def __init__(self):
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def write(self, path: str, statement: str, rows: pa.Table, cache_kib: int | None = None) -> int:
        """write() in the writer process."""
        request = pickle.dumps((path, statement, cache_kib), protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            process = self._started()
            try:
                stdin, stdout = pipes(process)
                write_frame(stdin, request)
                with pa.ipc.new_stream(stdin, rows.schema) as stream:  # straight into the pipe: no copy
                    stream.write_table(rows)
                stdin.flush()
                answer = read_frame(stdout)
            except (BrokenPipeError, EOFError, OSError):
                answer = None
            if answer is None:
                self._process = None
                raise RuntimeError(f"the bulk writer process ended (exit status {process.poll()})")
        if answer[:2] != b"ok":
            raise RuntimeError(f"writing into {path}: {answer[2:].decode()}")
        return _COUNT.unpack_from(answer, 2)[0]

    def _started(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            self._process = start_child("publicmesh.storage.bulk_writer")
        return self._process


WRITER = BulkWriter()


if __name__ == "__main__":
    main()
