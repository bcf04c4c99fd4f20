"""Reads the hub shares in one bulk call (hub.reads) answer each subject exactly what its own query answers, for
every dataset the hub shares reads of (those that name no persons), on SQLite and PostgreSQL."""

from __future__ import annotations

import orjson
import pyarrow as pa
import pytest

from publicmesh.hub.reads import rows_by_subject
from publicmesh.provider import node as answers
from publicmesh.provider.reads import StoreReads
from publicmesh.runtime.catalog import AGENCIES

KITAMI = "012084"
SHARED = [
    (system, name)
    for system in AGENCIES
    if system != "services"
    for name, dataset in AGENCIES[system].datasets.items()
    if not dataset.pseudonym_paths
]


class _Node:
    """What the node's answers read of a node: its agency, store and members."""

    def __init__(self, system: str, engine):
        self.agency, self.engine, self.reads = AGENCIES[system], engine, StoreReads()
        self.members = {str(m): m for m in self.agency.members([KITAMI])}

    def member_of(self, doc: dict):
        return self.members[doc["member"]]


@pytest.mark.parametrize("system,dataset", SHARED)
def test_a_shared_read_answers_what_a_single_query_answers(stores, system, dataset):
    node = _Node(system, stores[system])
    member = next(iter(node.members))
    data = node.agency.datasets[dataset]
    attributes = [a.name for a in data.attributes][::-1]  # in an order other than the table's
    with node.engine.connect() as conn:
        everyone = data.all_subjects(conn, node.agency.tenant_of(node.members[member]))
    asked = [*everyone[:40], "no-such-person", *everyone[:2]]  # a subject asked twice, one nobody holds
    doc = {"member": member, "dataset": dataset, "attributes": attributes}
    singles = {}
    for subject in dict.fromkeys(asked):
        try:
            _, body, _ = answers.query(node, {**doc, "subject": subject})
        except Exception:  # the node's unknown-subject problem
            continue
        found = orjson.loads(body)
        singles[subject] = (found["data"], found["protected"])
    unique = list(dict.fromkeys(asked))
    _, body, _ = answers.bulk(node, {**doc, "subjects": unique})
    shared = rows_by_subject(pa.ipc.open_stream(bytes(body)).read_all(), unique, attributes)
    assert everyone and len(singles) == min(40, len(everyone))
    assert {s: (r.data, r.protected) for s, r in shared.items()} == singles
    assert all(list(r.data) == attributes for r in shared.values())  # the same order of keys as well
