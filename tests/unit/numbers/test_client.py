"""NumbersClient over real HTTP: the Arrow form answers what the JSON form answers, in order, in chunks."""

import asyncio

import numpy as np
import pyarrow as pa
import pytest

from publicmesh.hub.numbers_client import NumbersClient
from publicmesh.numbers.keys import load_or_create_master
from publicmesh.numbers.pseudonyms import PseudonymService
from publicmesh.problems import Problem
from publicmesh.protocol import convert_wire as wire
from publicmesh.protocol.members import NUMBERS

TARGETS = ("child-allowance", "audit")


@pytest.fixture(scope="module")
def registry(node):
    service = PseudonymService(load_or_create_master(node.settings.keys_dir))
    return service.enrol(np.arange(5000), ["resident-registry", *TARGETS])


@pytest.fixture
def with_client(hub_outbound, numbers_url):
    """Runs work(client); the client keeps a scan's conversion of more than ``keeps_over`` pseudonyms."""
    return lambda work, keeps_over=100_000: asyncio.run(_run(hub_outbound(), numbers_url, work, keeps_over))


async def _run(outbound, url, work, keeps_over):
    await outbound.start()
    try:
        return await work(NumbersClient(outbound, url, str(NUMBERS), keeps_over))
    finally:
        await outbound.close()


def mixed(registry, count: int) -> list:
    """Pseudonyms with nulls, forgeries and other domains' pseudonyms among them, shuffled."""
    values = registry["resident-registry"].to_pylist()[:count] + [None] * 7 + ["A" * 22, "short", "!" * 22]
    values += registry["audit"].to_pylist()[:5]
    return [values[i] for i in np.random.default_rng(3).permutation(len(values))]


def test_convert_arrays_answers_what_convert_many_answers(with_client, registry):
    asked = mixed(registry, 3000)

    async def both(client):
        return (
            await client.convert_arrays(pa.array(asked, pa.string()), "resident-registry", TARGETS),
            await client.convert_many(asked, "resident-registry", TARGETS),
        )

    columns, lists = with_client(both)
    expected = dict(zip(registry["resident-registry"].to_pylist(), zip(*(registry[t].to_pylist() for t in TARGETS))))
    for k, target in enumerate(TARGETS):
        assert isinstance(columns[target], pa.StringArray) and len(columns[target]) == len(asked)
        assert columns[target].to_pylist() == lists[target]
        assert lists[target] == [expected[p][k] if p in expected else None for p in asked]


def test_large_inputs_go_in_chunks_and_keep_their_order(with_client, node, registry, monkeypatch):
    monkeypatch.setattr(wire, "ARROW_MAX_BATCH", 700)
    asked = pa.chunked_array([pa.array(c, pa.string()) for c in np.array_split(np.array(mixed(registry, 5000)), 3)])
    calls = []
    original = wire.request_body
    monkeypatch.setattr(wire, "request_body", lambda values, *a: calls.append(len(values)) or original(values, *a))

    converted = with_client(lambda c: c.convert_arrays(asked, "resident-registry", TARGETS))
    assert calls == [700] * 7 + [len(asked) - 4900]
    one_call = PseudonymService(load_or_create_master(node.settings.keys_dir)).convert(
        asked, "resident-registry", list(TARGETS)
    )
    for target in TARGETS:
        assert converted[target].equals(one_call[target])


def test_nothing_and_only_nulls(with_client):
    async def run(client):
        return (
            await client.convert_arrays(pa.array([], pa.string()), "resident-registry", TARGETS),
            await client.convert_arrays(pa.nulls(3), "resident-registry", TARGETS),
        )

    empty, nulls = with_client(run)
    assert all(len(empty[t]) == 0 and empty[t].type == pa.string() for t in TARGETS)
    assert all(nulls[t].to_pylist() == [None] * 3 for t in TARGETS)


def test_a_refusal_is_a_problem_not_a_wrong_answer(with_client):
    with pytest.raises(Problem) as refused:
        with_client(lambda c: c.convert_arrays(pa.array(["A" * 22]), "", TARGETS))
    assert refused.value.type.slug == "provider-unavailable"


def test_a_large_conversion_kept_and_asked_again_is_answered_without_a_call(with_client, registry, monkeypatch):
    asked = pa.array(mixed(registry, 3000), pa.string())
    other = pa.array(list(reversed(asked.to_pylist())), pa.string())
    calls = []
    original = wire.request_body
    monkeypatch.setattr(wire, "request_body", lambda values, *a: calls.append(len(values)) or original(values, *a))

    async def run(client):
        await client.convert_arrays(asked, "resident-registry", TARGETS)  # not kept
        first, handle = await client.convert_scan(asked, "resident-registry", TARGETS)
        again = await client.convert_arrays(asked.take(pa.array(range(len(asked)))), "resident-registry", TARGETS[:1])
        await client.convert_arrays(asked, "resident-registry", TARGETS)  # found once: then let go
        reversed_ = await client.convert_arrays(other, "resident-registry", TARGETS)
        elsewhere = await client.convert_arrays(asked, "resident-registry", ("pension",))
        assert handle is not None
        return first, again, reversed_, elsewhere

    first, again, reversed_, elsewhere = with_client(run, 100)
    # Kept, then the same values into fewer targets: no call; not kept, asked a third time, other values or
    # other targets: a call.
    assert calls == [len(asked)] * 5
    assert again == {TARGETS[0]: first[TARGETS[0]]}
    assert reversed_[TARGETS[1]].to_pylist() == list(reversed(first[TARGETS[1]].to_pylist()))
    assert elsewhere["pension"].null_count == first[TARGETS[0]].null_count


def test_a_second_scan_of_the_same_residents_waits_for_the_first_conversion_on_its_way(
    with_client, registry, monkeypatch
):
    asked = pa.array(mixed(registry, 3000), pa.string())
    calls = []
    original = wire.request_body
    monkeypatch.setattr(wire, "request_body", lambda values, *a: calls.append(len(values)) or original(values, *a))

    async def run(client):  # both asked before either is answered: a municipality's two scans at once
        return await asyncio.gather(
            client.convert_scan(asked, "resident-registry", TARGETS),
            client.convert_scan(asked, "resident-registry", TARGETS),
        )

    (first, handle), (second, same) = with_client(run, 100)
    assert calls == [len(asked)]
    assert all(first[t].equals(second[t]) for t in TARGETS)
    assert handle == same and handle is not None


def test_a_scan_handle_is_given_to_the_next_scan_of_the_same_residents_only(with_client, registry, monkeypatch):
    """The handle names the kept conversion: the scan that asked for it and the one next scan of the same values and
    source share it; a third scan, other residents, another source and a conversion under keeps_over do not."""
    asked = pa.array(mixed(registry, 3000), pa.string())
    other = asked.slice(1)
    calls = []
    original = wire.request_body
    monkeypatch.setattr(wire, "request_body", lambda values, *a: calls.append(len(values)) or original(values, *a))

    async def run(client):
        handles = [(await client.convert_scan(values, source, TARGETS))[1] for values, source in scans]
        small = await client.convert_scan(asked.slice(0, 50), "resident-registry", TARGETS)
        return handles, small[1]

    scans = [
        (asked, "resident-registry"),
        (other, "resident-registry"),  # other residents: a handle of their own
        (asked, "resident-registry"),  # the next scan of the first's residents: its handle, no call
        (asked, "resident-registry"),  # a third: the kept conversion was let go
        (asked, "local-tax"),  # another source: the same values name other people
    ]
    handles, small = with_client(run, 100)
    assert handles[2] == handles[0] and None not in handles
    assert len({handles[0], handles[1], handles[3], handles[4]}) == 4
    assert small is None  # 50 pseudonyms, not over keeps_over: nothing kept
    assert len(calls) == 5
