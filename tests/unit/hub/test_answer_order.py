"""The order a scan is answered in: its consumer's pseudonyms sorted, found once for a municipality's two scans of
the same residents (presenting the handle of their shared conversion), even when both are answered at once."""

from __future__ import annotations

import threading
import time

import pyarrow as pa

from publicmesh.hub import answer_order
from publicmesh.hub.exchange import Exchange
from publicmesh.hub.numbers_client import ScanHandle

REGISTRY = (ScanHandle("resident-registry", 1), "services")  # a scan's key: its conversion's handle, the domain


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
    scans = [
        threading.Thread(target=lambda: found.append(exchange._answer_order(None, subjects, REGISTRY)))
        for _ in range(2)
    ]
    for scan in scans:
        scan.start()
    for scan in scans:
        scan.join()
    assert len(sorted_by) == 1
    assert found[0] is found[1] and found[0].tolist() == list(range(999, -1, -1))
    other = pa.array([f"{i:022d}" for i in range(5)])  # other residents: their own order
    assert exchange._answer_order(None, other, (ScanHandle("resident-registry", 2), "services")).tolist() == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert len(sorted_by) == 2 and len(exchange.scan_orders) == 1  # the first's was taken twice: let go


def test_another_providers_scan_ordered_between_the_two_does_not_make_the_second_sort_again(monkeypatch):
    residents = pa.array([f"{i:022d}" for i in range(10, 0, -1)])
    taxpayers = pa.array([f"{i:022d}" for i in range(9, 0, -2)])  # the local tax's scan of the same municipality
    sorted_by = []
    by_subject = answer_order.by_subject
    monkeypatch.setattr(answer_order, "by_subject", lambda values: sorted_by.append(values) or by_subject(values))
    exchange = _exchange()
    person = exchange._answer_order(None, residents, REGISTRY)
    exchange._answer_order(None, taxpayers, (ScanHandle("local-tax", 2), "services"))
    household = exchange._answer_order(None, residents, REGISTRY)
    assert household is person and [len(s) for s in sorted_by] == [10, 5]


def _counting(monkeypatch) -> list:
    sorted_by = []
    by_subject = answer_order.by_subject
    monkeypatch.setattr(answer_order, "by_subject", lambda values: sorted_by.append(values) or by_subject(values))
    return sorted_by


def test_the_order_is_matched_by_the_handle_not_by_the_array(monkeypatch):
    """Equal arrays without a handle (a conversion too small to be kept) are sorted each time; another consumer's
    domain under the same handle is another order; an equal handle finds the order whatever array comes with it."""
    sorted_by = _counting(monkeypatch)
    residents = pa.array([f"{i:022d}" for i in range(10, 0, -1)])
    exchange = _exchange()
    exchange._answer_order(None, residents)
    exchange._answer_order(None, residents)
    assert len(sorted_by) == 2 and len(exchange.scan_orders) == 0
    first = exchange._answer_order(None, residents, REGISTRY)
    other_domain = exchange._answer_order(None, residents, (REGISTRY[0], "child-allowance"))
    again = exchange._answer_order(
        None, pa.array(residents.to_pylist()), (ScanHandle("resident-registry", 1), "services")
    )
    assert again is first and other_domain is not first and len(sorted_by) == 4


def test_a_kept_order_is_let_go_after_its_second_scan_or_when_newer_ones_push_it_out(monkeypatch):
    sorted_by = _counting(monkeypatch)
    residents = pa.array([f"{i:022d}" for i in range(10, 0, -1)])
    orders = answer_order.ScanOrders(kept=2)
    keys = [(ScanHandle("resident-registry", n), "services") for n in range(4)]
    orders.order(keys[0], residents)
    orders.order(keys[0], residents)  # taken by the second scan: let go
    orders.order(keys[0], residents)  # a third presentation sorts again
    assert len(sorted_by) == 2
    orders.order(keys[1], residents)
    orders.order(keys[2], residents)  # keys[0] and keys[1] kept before: keys[0] pushed out
    assert len(orders) == 2
    orders.order(keys[0], residents)
    assert len(sorted_by) == 5


def test_a_failed_sort_reaches_the_scan_waiting_for_it_and_is_not_kept(monkeypatch):
    def failing(values):
        raise MemoryError("no room to sort")

    monkeypatch.setattr(answer_order, "by_subject", failing)
    orders = answer_order.ScanOrders()
    residents = pa.array(["A" * 22])
    for _ in range(2):
        try:
            orders.order(REGISTRY, residents)
        except MemoryError:
            pass
        else:
            raise AssertionError("the failure was not raised")
    assert len(orders) == 0
