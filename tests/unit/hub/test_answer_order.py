"""The order a scan is answered in: its consumer's pseudonyms sorted, found once for a municipality's two scans of
the same residents, even when both are answered at the same moment."""

from __future__ import annotations

import threading
import time

import pyarrow as pa

from publicmesh.hub import answer_order
from publicmesh.hub.exchange import Exchange


def _exchange() -> Exchange:
    return Exchange(None, None, None, None, None, None)


def test_a_scan_is_answered_in_the_order_of_the_consumers_pseudonyms():
    subjects = pa.array(["CCCCCCCCCCCCCCCCCCCCCC", "AAAAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBB"])
    assert _exchange()._answer_order(None, subjects).tolist() == [1, 2, 0]


def test_two_scans_of_the_same_residents_answered_at_once_sort_them_once(monkeypatch):
    subjects = pa.array([f"{i:022d}" for i in range(1000, 0, -1)])
    sorted_by = []
    by_subject = answer_order.by_subject

    def slow(values):  # the first scan is still sorting when the second asks
        sorted_by.append(values)
        time.sleep(0.2)
        return by_subject(values)

    monkeypatch.setattr(answer_order, "by_subject", slow)
    exchange, found = _exchange(), []
    scans = [threading.Thread(target=lambda: found.append(exchange._answer_order(None, subjects))) for _ in range(2)]
    for scan in scans:
        scan.start()
    for scan in scans:
        scan.join()
    assert len(sorted_by) == 1
    assert found[0] is found[1] and found[0].tolist() == list(range(999, -1, -1))
    other = pa.array([f"{i:022d}" for i in range(5)])  # other residents: their own order
    assert exchange._answer_order(None, other).tolist() == [0, 1, 2, 3, 4] and len(sorted_by) == 2


def test_another_providers_scan_ordered_between_the_two_does_not_make_the_second_sort_again(monkeypatch):
    residents = pa.array([f"{i:022d}" for i in range(10, 0, -1)])
    taxpayers = pa.array([f"{i:022d}" for i in range(9, 0, -2)])  # the local tax's scan of the same municipality
    sorted_by = []
    by_subject = answer_order.by_subject
    monkeypatch.setattr(answer_order, "by_subject", lambda values: sorted_by.append(values) or by_subject(values))
    exchange = _exchange()
    person = exchange._answer_order(None, residents)
    exchange._answer_order(None, taxpayers)
    household = exchange._answer_order(None, residents)
    assert household is person and [len(s) for s in sorted_by] == [10, 5]
