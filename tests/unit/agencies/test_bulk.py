"""An agency's bulk answer (a whole municipality, read in columns) says exactly what its per-subject lookup says."""

from __future__ import annotations

import pytest

from publicmesh.agencies import datasets, resident_registry
from publicmesh.agencies.catalog import AGENCIES
from publicmesh.runtime.seed import seed
from publicmesh.runtime.topology import municipalities
from publicmesh.settings import Settings
from publicmesh.storage import engine_for

KITAMI = "012084"


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("bulk"), database_url="")
    seed(settings, 400, municipalities(), 11)
    return settings


def _answers(table) -> dict[str, dict]:
    rows = table.to_pylist()
    return {row.pop("subject"): row for row in rows}


@pytest.mark.parametrize("system,dataset", [("resident-registry", "person"), ("resident-registry", "household"),
                                            ("resident-registry", "address"), ("local-tax", "assessment")])
def test_a_scan_answers_every_subject_as_the_lookup_does(settings, system, dataset):
    agency, engine = AGENCIES[system], engine_for(system, settings)
    data = agency.datasets[dataset]
    attributes = [a.name for a in data.attributes]
    tenant = agency.tenant_of(next(m for m in agency.members([KITAMI])))
    with engine.connect() as conn:
        everyone = data.all_subjects(conn, tenant)
        expected = data.lookup(conn, tenant, everyone, attributes)
        scanned_table = data.bulk(conn, tenant, None, attributes)
        some = everyone[::3]
        listed_table = data.bulk(conn, tenant, some, attributes)
    scanned, listed = _answers(scanned_table), _answers(listed_table)
    assert scanned_table.schema == listed_table.schema  # parts of one answer concatenate (0 is no False here)
    engine.dispose()
    assert everyone and scanned.keys() == expected.keys()
    for subject, row in expected.items():
        assert scanned[subject] == {"_protected": bool(row.pop("_protected", False)), **row}
    assert listed == {s: scanned[s] for s in some}


def test_a_large_subject_list_is_answered_from_one_scan_with_the_same_rows(settings, monkeypatch):
    agency, engine = AGENCIES["resident-registry"], engine_for("resident-registry", settings)
    tenant = agency.tenant_of(next(m for m in agency.members([KITAMI])))
    attributes = ["relation", "household_size", "members"]
    with engine.connect() as conn:
        some = resident_registry.HOUSEHOLD.all_subjects(conn, tenant)[::2]
        listed_table = resident_registry.HOUSEHOLD.bulk(conn, tenant, some, attributes)
        listed = _answers(listed_table)
        monkeypatch.setattr(resident_registry, "SCAN_OVER", 0)
        monkeypatch.setattr(datasets, "SCAN_OVER", 0)
        scanned_table = resident_registry.HOUSEHOLD.bulk(conn, tenant, some, attributes)
        scanned = _answers(scanned_table)
    engine.dispose()
    assert len(listed) == len(some) and scanned == listed
    assert listed_table.schema == scanned_table.schema  # parts of one answer concatenate
    assert any(len(row["members"]) > 1 for row in listed.values())
