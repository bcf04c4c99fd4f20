"""An agency's bulk answer (a whole municipality, read in columns) says exactly what its per-subject lookup says,
on SQLite and PostgreSQL, whichever way it reads: a short list, a scan, a scan filtered to a long list, a join."""

from __future__ import annotations

import pyarrow as pa
import pytest
from sqlalchemy import insert

from publicmesh.agencies import resident_registry
from publicmesh.agencies.local_tax import FISCAL_YEAR, assessments
from publicmesh.provider import datasets
from publicmesh.provider.reads import StoreReads
from publicmesh.runtime.catalog import AGENCIES
from publicmesh.settings import Settings

KITAMI = "012084"
DATASETS = [(system, name) for system in AGENCIES if system != "services" for name in AGENCIES[system].datasets]


def _answers(table) -> dict[str, dict]:
    rows = table.to_pylist()
    return {row.pop("subject"): row for row in rows}


def _tenant(system: str):
    agency = AGENCIES[system]
    return agency.tenant_of(next(m for m in agency.members([KITAMI])))


def _expected_type(attribute) -> pa.DataType:
    kind = attribute.schema.get("type")
    kind = next(k for k in kind if k != "null") if isinstance(kind, list) else kind
    return {"string": pa.string(), "integer": pa.int64(), "boolean": pa.bool_()}.get(kind)


@pytest.mark.parametrize("system,dataset", DATASETS)
def test_every_way_of_reading_answers_what_the_lookup_answers(stores, monkeypatch, system, dataset):
    data, tenant = AGENCIES[system].datasets[dataset], _tenant(system)
    attributes = [a.name for a in data.attributes]
    reads = StoreReads()  # as a node's: the scan below counts the tenant's rows, which chooses the join
    with stores[system].connect() as conn:
        everyone = data.all_subjects(conn, tenant)
        expected = data.lookup(conn, tenant, everyone, attributes)
        some = everyone[::3]
        tables = {
            "scan": data.bulk(conn, tenant, None, attributes, reads=reads),
            "short list": data.bulk(conn, tenant, some, attributes, reads=reads),
        }
        monkeypatch.setattr(datasets, "SCAN_OVER", 0)
        monkeypatch.setattr(resident_registry, "SCAN_OVER", 0)
        tables["long list"] = data.bulk(conn, tenant, some, attributes, reads=reads)
        tables["long list in Arrow"] = data.bulk(
            conn, tenant, pa.chunked_array([pa.array(some, pa.string())]), attributes, reads=reads
        )
        joined = []  # a list under a quarter of the municipality, as its scan counted it, is looked up by the key
        read_arrow = datasets.columnar.read_arrow
        monkeypatch.setattr(
            datasets.columnar,
            "read_arrow",
            lambda *a, asked=None, **k: joined.append(asked is not None) or read_arrow(*a, asked=asked, **k),
        )
        few = everyone[::7]
        tables["small share"] = data.bulk(conn, tenant, few, attributes, reads=reads)
    assert everyone and len(expected) == len(everyone)
    for name, table in tables.items():  # parts of one answer concatenate: the same types every way
        assert table.schema == tables["scan"].schema, name
    for attribute in data.attributes:
        if _expected_type(attribute) is not None:  # strings not large_strings, dates as text, booleans as bool
            assert tables["scan"].schema.field(attribute.name).type == _expected_type(attribute), attribute.name
    assert tables["scan"].schema.field("_protected").type == pa.bool_()
    scanned = _answers(tables["scan"])
    assert scanned.keys() == expected.keys()
    for subject, row in expected.items():
        assert scanned[subject] == {"_protected": bool(row.pop("_protected", False)), **row}
    assert _answers(tables["short list"]) == _answers(tables["long list"]) == {s: scanned[s] for s in some}
    assert _answers(tables["long list in Arrow"]) == _answers(tables["long list"])
    assert _answers(tables["small share"]) == {s: scanned[s] for s in few}
    if data.custom_bulk is None and data.custom_lookup is None and tables["scan"].num_rows > 8:
        assert joined == [True]


def test_a_subject_with_an_older_assessment_is_answered_with_the_latest(fresh_stores, monkeypatch):
    fresh_stores.seed(200)
    data, tenant = AGENCIES["local-tax"].datasets["assessment"], _tenant("local-tax")
    engine = fresh_stores["local-tax"]
    with engine.connect() as conn:
        subject = data.all_subjects(conn, tenant)[0]
    with engine.begin() as conn:
        conn.execute(
            insert(assessments).values(
                tenant=tenant,
                pseudonym=subject,
                fiscal_year=FISCAL_YEAR - 1,
                income=1,
                taxable_income=0,
                municipal_tax=0,
                prefectural_tax=0,
                tax_exempt=True,
            )
        )
    with engine.connect() as conn:
        answers = [
            _answers(data.bulk(conn, tenant, None, ["fiscal_year", "income"])),
            _answers(data.bulk(conn, tenant, [subject], ["fiscal_year", "income"])),
        ]
        monkeypatch.setattr(datasets, "SCAN_OVER", 0)
        answers.append(_answers(data.bulk(conn, tenant, [subject], ["fiscal_year", "income"])))
    for answer in answers:
        assert answer[subject]["fiscal_year"] == FISCAL_YEAR and answer[subject]["income"] != 1
    assert len(answers[0]) == len(set(answers[0]))


def test_a_large_household_list_is_answered_from_one_scan_with_the_same_rows(stores, monkeypatch):
    tenant = _tenant("resident-registry")
    attributes = ["relation", "household_size", "members", "head"]
    with stores["resident-registry"].connect() as conn:
        some = resident_registry.HOUSEHOLD.all_subjects(conn, tenant)[::2]
        listed_table = resident_registry.HOUSEHOLD.bulk(conn, tenant, some, attributes)
        monkeypatch.setattr(resident_registry, "SCAN_OVER", 0)
        monkeypatch.setattr(datasets, "SCAN_OVER", 0)
        scanned_table = resident_registry.HOUSEHOLD.bulk(conn, tenant, some, attributes)
    listed, scanned = _answers(listed_table), _answers(scanned_table)
    assert len(listed) == len(some) and scanned == listed
    assert listed_table.schema == scanned_table.schema  # parts of one answer concatenate
    assert any(len(row["members"]) > 1 for row in listed.values())


@pytest.mark.parametrize("attributes", [["relation", "head"], ["household_size"], ["members", "relation"]])
def test_a_household_scan_of_some_attributes_answers_as_the_lookup_does(stores, monkeypatch, attributes):
    tenant = _tenant("resident-registry")
    with stores["resident-registry"].connect() as conn:
        some = resident_registry.HOUSEHOLD.all_subjects(conn, tenant)[::3]
        listed = _answers(resident_registry.HOUSEHOLD.bulk(conn, tenant, some, attributes))
        monkeypatch.setattr(resident_registry, "SCAN_OVER", 0)
        monkeypatch.setattr(datasets, "SCAN_OVER", 0)
        scanned_table = resident_registry.HOUSEHOLD.bulk(conn, tenant, some, attributes)
    assert scanned_table.column_names == ["subject", "_protected", *attributes]
    assert _answers(scanned_table) == listed and len(listed) == len(some)


def test_a_household_scan_answers_in_the_order_a_person_scan_does(stores):
    """The hub converts and records a municipality's residents once for both scans (it finds the same column)."""
    tenant = _tenant("resident-registry")
    with stores["resident-registry"].connect() as conn:
        person = resident_registry.PERSON.bulk(conn, tenant, None, ["status"])
        household = resident_registry.HOUSEHOLD.bulk(conn, tenant, None, ["relation", "head"])
    assert household.num_rows > 1 and household.column("subject").equals(person.column("subject"))


def test_a_municipalitys_person_and_household_scans_asked_at_once_read_its_residents_once(stores, monkeypatch):
    """Most of a scan's cost is per row read: two scans of the same residents arriving together share one read,
    and answer what each answers alone."""
    from concurrent.futures import ThreadPoolExecutor

    from publicmesh.storage import columnar

    tenant, engine = _tenant("resident-registry"), stores["resident-registry"]
    with engine.connect() as conn:
        alone = (
            resident_registry.PERSON.bulk(conn, tenant, None, ["status", "birth_date"]),
            resident_registry.HOUSEHOLD.bulk(conn, tenant, None, ["relation", "head"]),
        )
    reads = []
    original = columnar.read_arrow
    monkeypatch.setattr(
        columnar,
        "read_arrow",
        lambda conn, query, *a, **k: (
            reads.append([c.name for c in query.selected_columns]) or original(conn, query, *a, **k)
        ),
    )
    node_reads = StoreReads(gather_s=0.5)  # (both surely arrive within it)

    def scan(dataset, attributes):
        with engine.connect() as conn:
            return dataset.bulk(conn, tenant, None, attributes, reads=node_reads)

    with ThreadPoolExecutor(2) as pool:
        together = [
            pool.submit(scan, resident_registry.PERSON, ["status", "birth_date"]),
            pool.submit(scan, resident_registry.HOUSEHOLD, ["relation", "head"]),
        ]
        together = tuple(future.result() for future in together)
    assert len(reads) == 1 and {"pseudonym", "status", "birth_date", "relation", "household_no"} <= set(reads[0])
    assert together[0].equals(alone[0]) and together[1].equals(alone[1])


def _spied_reads(monkeypatch) -> list[bool]:
    """Whether each ADBC read looked the asked subjects up by the key (joined), in order."""
    joined, read_arrow = [], datasets.columnar.read_arrow
    monkeypatch.setattr(
        datasets.columnar,
        "read_arrow",
        lambda *a, asked=None, **k: joined.append(asked is not None) or read_arrow(*a, asked=asked, **k),
    )
    return joined


def test_a_node_joins_a_small_share_only_after_a_scan_counted_the_tenant_and_until_it_forgets(stores, monkeypatch):
    """StoreReads' tenant sizes: the share comes from Settings.join_share, a size is per reads (per node, not kept
    by the module's Dataset), and forget() lets it go."""
    data, tenant = AGENCIES["local-tax"].datasets["assessment"], _tenant("local-tax")
    monkeypatch.setattr(datasets, "SCAN_OVER", 0)
    joined = _spied_reads(monkeypatch)
    reads = StoreReads.from_settings(Settings(join_share=3))
    assert reads.join_share == 3
    with stores["local-tax"].connect() as conn:
        everyone = data.all_subjects(conn, tenant)
        few = everyone[: len(everyone) // 3 - 1]  # under a third: joined once the tenant was counted
        data.bulk(conn, tenant, few, ["income"], reads=reads)  # not counted yet: scanned
        data.bulk(conn, tenant, None, ["income"], reads=reads)  # counts the tenant
        data.bulk(conn, tenant, few, ["income"], reads=reads)
        data.bulk(conn, tenant, few, ["income"], reads=StoreReads(join_share=3))  # another node's: knows nothing
        data.bulk(conn, tenant, few, ["income"])  # no reads: remembers nothing either
        many = few + everyone[-2:] * (len(everyone) // 6)  # over a third (a subject may be asked twice)
        data.bulk(conn, tenant, many, ["income"], reads=reads)
        reads.forget(tenant)
        assert not reads.joins(data.name, tenant, 1)
        data.bulk(conn, tenant, few, ["income"], reads=reads)
    assert joined == [False, False, True, False, False, False, False]


def test_the_scans_gather_only_within_the_window_of_their_reads(stores, monkeypatch):
    """Settings.scan_gather_s sets the window; each StoreReads (each node's) gathers only its own scans."""
    from concurrent.futures import ThreadPoolExecutor

    from publicmesh.storage import columnar

    tenant, engine = _tenant("resident-registry"), stores["resident-registry"]
    reads_made = []
    original = columnar.read_arrow
    monkeypatch.setattr(columnar, "read_arrow", lambda *a, **k: reads_made.append(1) or original(*a, **k))

    def both(first: StoreReads, second: StoreReads) -> int:
        reads_made.clear()

        def scan(dataset, attributes, reads):
            with engine.connect() as conn:
                return dataset.bulk(conn, tenant, None, attributes, reads=reads)

        with ThreadPoolExecutor(2) as pool:
            futures = [
                pool.submit(scan, resident_registry.PERSON, ["status"], first),
                pool.submit(scan, resident_registry.HOUSEHOLD, ["relation"], second),
            ]
            [future.result() for future in futures]
        return len(reads_made)

    gathering = StoreReads.from_settings(Settings(scan_gather_s=0.5))
    assert gathering.scans.gather_s == 0.5
    assert both(gathering, gathering) == 1
    assert both(StoreReads(gather_s=0.5), StoreReads(gather_s=0.5)) == 2  # two nodes' reads share nothing
