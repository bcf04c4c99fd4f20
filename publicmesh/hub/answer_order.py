"""The order a bulk answer reaches its consumer in: one that tells it nothing of the provider's pseudonyms.

A provider answers in its storage order, which is the order of its own pseudonyms and so the same for every
consumer: two consumers could pair the rows of their answers by position and link their pseudonyms without the
number service. The hub therefore answers a list in the order it was asked, and a scan sorted by the consumer's own
pseudonyms (which the consumer knows, and which give a municipality's scans of one provider the same order).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from concurrent.futures import Future

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


class ScanOrders:
    """The order of a scan, kept for the next scan of the same residents: a municipality's person and household
    scans are answered in the same order (their shared conversion), so the second takes the first's, waiting for it
    while the first is still sorting. Keyed by what names the residents explicitly (the conversion's ScanHandle
    and the consumer's domain), never by the array. An order is let go when the second scan has taken it (the
    handle is given to one more scan only), or when ``kept`` newer ones pushed it out."""

    def __init__(self, kept: int = 2):  # two: another provider's scan (the income) may come between the two
        self._kept = kept
        self._orders: OrderedDict[Hashable, Future] = OrderedDict()
        self._lock = threading.Lock()

    def order(self, key: Hashable | None, subjects: pa.Array) -> np.ndarray:
        """by_subject(subjects), sorted once for the two scans presenting the same ``key`` (None: not kept)."""
        if key is None:
            return by_subject(subjects)
        with self._lock:
            found = self._orders.pop(key, None)  # the second presentation: taken, and let go
            first = found is None
            if first:
                found = self._orders[key] = Future()
                while len(self._orders) > self._kept:
                    self._orders.popitem(last=False)
        if first:
            try:
                found.set_result(by_subject(subjects))
            except BaseException as exc:
                found.set_exception(exc)
        return found.result()

    def __len__(self) -> int:
        return len(self._orders)
