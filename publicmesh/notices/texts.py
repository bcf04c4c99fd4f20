"""Notice texts (お知らせの文面): a title and a body in Japanese and in English, stored once each and named by their
digest. A service's notices to a whole municipality (一斉通知) have a handful of texts for 260,000 notices."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection

from publicmesh.notices.model import TEXT_FIELDS, text_id
from publicmesh.notices.schema import notice_texts
from publicmesh.storage import upsert

Texts = tuple[str, str, str, str]  # in TEXT_FIELDS order


def store_texts(conn: Connection, texts: dict[str, Texts]) -> None:
    """Stores the texts (by their id) not stored yet, in the connection's transaction."""
    if not texts:
        return
    upsert(conn, notice_texts, [{"id": key, **dict(zip(TEXT_FIELDS, values))} for key, values in texts.items()], ["id"])


def texts_of(table: pa.Table) -> tuple[pa.DictionaryArray, dict[str, Texts]]:
    """Each notice's text id (a dictionary array: the distinct ids once) and the distinct texts by id, for notices
    whose text columns are dictionary-encoded (notices_wire.checked); a few hash passes over integer columns."""
    code = None
    for name in TEXT_FIELDS:
        column = table.column(name).combine_chunks()
        index = column.indices.cast(pa.int64())
        # The combination so far and this column's index, numbered densely again (below the number of rows, so the
        # next product cannot overflow).
        combined = index if code is None else pc.add(pc.multiply(code, len(column.dictionary)), index)
        code = pc.dictionary_encode(combined).indices.cast(pa.int64())
    # dictionary_encode numbers values in order of appearance: the first row of number k shows text k.
    _, first = np.unique(code.to_numpy(), return_index=True)
    shown = pa.array(first)
    texts = list(zip(*(pc.take(table.column(name), shown).to_pylist() for name in TEXT_FIELDS)))
    ids = [text_id(t) for t in texts]
    return pa.DictionaryArray.from_arrays(code.cast(pa.int32()), pa.array(ids, pa.string())), dict(zip(ids, texts))
