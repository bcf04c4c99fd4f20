"""The order a bulk answer reaches its consumer in: one that tells it nothing of the provider's pseudonyms.

A provider answers in its storage order, which is the order of its own pseudonyms and so the same for every
consumer: two consumers could pair the rows of their answers by position and link their pseudonyms without the
number service. The hub therefore answers a list in the order it was asked, and a scan sorted by the consumer's own
pseudonyms (which the consumer knows, and which give a municipality's scans of one provider the same order).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def as_asked(rows: pa.Array) -> np.ndarray | None:
    """The permutation that puts answer rows (their positions in the request) in request order; None if they are."""
    positions = rows.to_numpy(zero_copy_only=False)
    if len(positions) < 2 or (positions[1:] >= positions[:-1]).all():
        return None
    return np.argsort(positions, kind="stable")


def by_subject(subjects: pa.Array) -> np.ndarray:
    """The permutation that sorts the subjects. Pseudonyms are sorted by their first 8 bytes as one integer, which
    almost never tie; where two do, or the values are not all one length, Arrow sorts the strings whole."""
    count = len(subjects)
    if count and not subjects.null_count and pa.types.is_string(subjects.type):
        offsets = np.frombuffer(subjects.buffers()[1], np.int32)[subjects.offset : subjects.offset + count + 1]
        width = int(offsets[1] - offsets[0])
        if width >= 8 and (np.diff(offsets) == width).all():
            data = np.frombuffer(subjects.buffers()[2], np.uint8)[offsets[0] : offsets[-1]].reshape(count, width)
            keys = np.ascontiguousarray(data[:, :8]).view(">u8").reshape(count)
            order = np.argsort(keys)  # no two keys alike (checked below): any sort gives the one order
            ordered = keys[order]
            if not (ordered[1:] == ordered[:-1]).any():
                return order
    return pc.sort_indices(subjects).to_numpy()
