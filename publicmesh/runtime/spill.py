"""Seed rows spilled to disk by key range and read back in primary-key order, so that a population larger than
memory is written to each clustered table as appends (a b-tree filled in random order gets slow and sparse)."""

from __future__ import annotations

import string
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
from sqlalchemy import Table

from publicmesh.provider.loading import arrow_rows

# Pseudonyms are url-safe base64; any other first character still falls in a range, only less evenly.
_FIRST = "".join(sorted(string.ascii_letters + string.digits + "-_"))
_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")


class Spill:
    """Rows of many tables, each partitioned by its leading key (tenant, then ranges of the pseudonym's first
    character) into one compressed Arrow stream per partition."""

    def __init__(self, folder: Path, ranges: int = 1):
        if not 1 <= ranges <= len(_FIRST):
            raise ValueError(f"ranges must be between 1 and {len(_FIRST)}")
        self.folder, self.bounds = folder, [_FIRST[k * len(_FIRST) // ranges] for k in range(1, ranges)]
        self._writers: dict[tuple, tuple[Table, pa.ipc.RecordBatchStreamWriter, Path]] = {}
        self.rows: dict[tuple[str, str], int] = {}
        self._closed = False

    def add(self, store: str, table: Table, frame: pl.DataFrame) -> None:
        if frame.is_empty():
            return
        tenant, first = _leading(table)
        keyed = frame.with_columns(
            pl.sum_horizontal(
                [(pl.col(first).str.head(1) >= b).cast(pl.Int8) for b in self.bounds] or [pl.lit(0, pl.Int8)]
            ).alias("_range")
        )
        by = [tenant, "_range"] if tenant else ["_range"]
        for key, part in keyed.partition_by(by, as_dict=True, include_key=True).items():
            data = arrow_rows(table, part.drop("_range"))
            key = (*key[:-1], f"{key[-1]:02d}")  # names sort as the ranges do
            self._writer(store, table, key, data.schema).write_table(data)
        self.rows[(store, table.name)] = self.rows.get((store, table.name), 0) + frame.height

    def drain(self) -> Iterator[tuple[str, Table, Iterator[pa.Table]]]:
        """Each (store, table) with its rows in primary-key order, one partition at a time (deleted once read)."""
        self._close_writers()
        tables: dict[tuple[str, str], list[tuple]] = {}
        for key in sorted(self._writers):  # (store, table, tenant, range): the ranges in key order
            tables.setdefault(key[:2], []).append(key)
        for (store, _name), keys in tables.items():
            yield store, self._writers[keys[0]][0], self._partitions(keys)

    def _partitions(self, keys: list[tuple]) -> Iterator[pa.Table]:
        for key in keys:
            table, _, path = self._writers.pop(key)
            with pa.memory_map(str(path)) as source:
                data = pa.ipc.open_stream(source).read_all()
            path.unlink()
            yield data.sort_by([(c.name, "ascending") for c in table.primary_key.columns])

    def _writer(self, store: str, table: Table, key: tuple, schema: pa.Schema) -> pa.ipc.RecordBatchStreamWriter:
        name = (store, table.name, *key)
        if name not in self._writers:
            path = self.folder / f"{'.'.join(name)}.arrows"
            self._writers[name] = (table, pa.ipc.new_stream(str(path), schema, options=_OPTIONS), path)
        return self._writers[name][1]

    def close(self) -> None:
        """Removes what was not read (after a failure)."""
        self._close_writers()
        for _, _, path in self._writers.values():
            path.unlink(missing_ok=True)
        self._writers.clear()

    def _close_writers(self) -> None:
        if not self._closed:
            self._closed = True
            for _, writer, _ in self._writers.values():
                writer.close()


def _leading(table: Table) -> tuple[str | None, str]:
    """The tenant column leading the primary key (if any) and the text column that orders rows after it."""
    key = [c.name for c in table.primary_key.columns]
    if not key:
        raise ValueError(f"{table.name} has no primary key to order its rows by")
    return (key[0], key[1]) if key[0] == "tenant" and len(key) > 1 else (None, key[0])
