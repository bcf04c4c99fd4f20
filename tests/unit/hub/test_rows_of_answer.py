"""A provider may name persons of its own answer by their rows (a household's head in a scan): the hub gives the
consumer those rows' pseudonyms, records every person once, and refuses rows it cannot resolve."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pyarrow as pa
import pytest

from publicmesh.audit.records import SubjectBatch
from publicmesh.hub.exchange import Exchange
from publicmesh.hub.rules import AccessRule
from publicmesh.problems import Problem
from publicmesh.protocol import bulk_wire
from publicmesh.protocol.members import AUDIT_DOMAIN, MemberId
from publicmesh.protocol.schemas import BulkRequest

CONSUMER = MemberId.parse("GOV/digital/services")
PROVIDER = MemberId.parse("MUNI/012084/resident-registry")
DATASET = {
    "attributes": [{"name": "relation", "category": "household"}, {"name": "head", "category": "household"}],
    "pseudonym_paths": ["head"],
}
RULE = AccessRule(
    id="r",
    consumer=str(CONSUMER),
    affair="a",
    affair_ja="a",
    provider=str(PROVIDER),
    dataset="household",
    attributes=("relation", "head"),
    legal_basis="law",
    scan=True,
)


@dataclass
class Provider:
    id: MemberId


class Audit:
    def __init__(self):
        self.batches: list[SubjectBatch] = []

    async def append_many(self, batch):
        self.batches += batch
        return list(range(len(batch)))


def _answer(heads: list[int], *, scan: bool = True):
    exchange = Exchange.__new__(Exchange)
    exchange.audit = Audit()
    rows = bulk_wire.as_rows_of_answer(
        pa.table(
            {
                "relation": ["head", "spouse", "child"],
                "head": pa.array(heads, pa.int32()),
                "_protected": [False, False, False],
                "row": pa.array([0, 1, 2], pa.int64()),
            }
        ),
        "head",
    )
    subjects = pa.array(["consumer-a", "consumer-b", "consumer-c"])
    converted = {AUDIT_DOMAIN: pa.array(["audit-a", "audit-b", "audit-c"])}
    req = BulkRequest(
        provider=str(PROVIDER),
        dataset="household",
        attributes=["relation", "head"],
        purpose="p",
        scan=scan,
        subjects=None if scan else ["x"],
    )
    table = asyncio.run(
        exchange._bulk_answer(CONSUMER, Provider(PROVIDER), RULE, DATASET, req, rows, converted, subjects, "request")
    )
    return table, exchange.audit.batches


def test_the_rows_named_arrive_as_the_consumers_pseudonyms_in_one_record():
    table, batches = _answer([0, 0, 0])
    assert table.column("head").to_pylist() == ["consumer-a"] * 3
    assert table.column("subject").to_pylist() == ["consumer-a", "consumer-b", "consumer-c"]
    [record] = batches  # the head is a subject of the answer: named once, in its record
    assert sorted(record.subjects.to_pylist()) == ["audit-a", "audit-b", "audit-c"]


@pytest.mark.parametrize("heads", [[0, 3, 0], [0, -1, 0]])
def test_a_row_the_answer_does_not_have_is_a_bad_answer(heads):
    with pytest.raises(Problem) as refused:
        _answer(heads)
    assert refused.value.type.uri.endswith("bad-provider-answer")


def test_rows_are_refused_outside_a_scan():
    with pytest.raises(Problem) as refused:  # a list's answer may come in chunks: its rows name nobody surely
        _answer([0, 0, 0], scan=False)
    assert refused.value.type.uri.endswith("bad-provider-answer")
