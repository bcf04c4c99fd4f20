"""Privacy, proven on the stores themselves: no My Number outside the number service, no foreign pseudonyms."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import MetaData, select

from publicmesh.runtime.catalog import AGENCIES
from publicmesh.storage import engine_for


def _values(mesh, store: str) -> set:
    engine = engine_for(store, mesh.settings)
    metadata = MetaData()
    metadata.reflect(engine)
    values = set()
    with engine.connect() as conn:
        for table in metadata.tables.values():
            for row in conn.execute(select(table)):
                for value in row:
                    if isinstance(value, (str, int)) and not isinstance(value, bool):
                        values.add(str(value))
                    if isinstance(value, str) and value.startswith(("{", "[")):
                        values.update(_tokens(value))
    engine.dispose()
    return values


def _tokens(text: str) -> set[str]:
    import re

    return set(re.findall(r"[A-Za-z0-9_-]{12,22}", text))


def test_no_my_number_and_no_other_agencys_pseudonym_is_stored_by_an_agency(mesh, people):
    serials = np.arange(0, mesh.residents + 100)
    my_numbers = set(people.numbers.my_numbers_for_test(serials))
    assert len(my_numbers) == len(serials)
    domains = [*AGENCIES, "audit"]
    pseudonyms = {d: set(p.to_pylist()) for d, p in people.numbers.enrol(serials, domains).items()}
    for system in AGENCIES:
        stored = _values(mesh, system)
        # (the services part holds pseudonyms only once a service is published: test_services)
        assert stored & pseudonyms[system] or system == "services", f"{system} holds its own pseudonyms"
        assert not stored & my_numbers, f"{system} stores a My Number"
        for other in domains:
            if other != system:
                assert not stored & pseudonyms[other], f"{system} stores a pseudonym of {other}"


def test_the_hub_and_the_audit_log_hold_no_my_number_and_no_agency_pseudonym(mesh, people, ensure_exchanges):
    serials = np.arange(0, mesh.residents + 100)
    my_numbers = set(people.numbers.my_numbers_for_test(serials))
    agency_pseudonyms = set()
    for p in people.numbers.enrol(serials, list(AGENCIES)).values():
        agency_pseudonyms.update(p.to_pylist())
    audit_subjects = set(people.numbers.enrol(serials, ["audit"])["audit"].to_pylist())
    for store in ("hub", "audit"):
        stored = _values(mesh, store)
        assert not stored & my_numbers
        assert not stored & agency_pseudonyms
    assert _values(mesh, "audit") & audit_subjects, "the log names subjects by their audit pseudonym"
    # The event stream carries each provider's events under the provider's pseudonyms until delivered, never a
    # My Number.
    assert not _values(mesh, "events") & my_numbers


@pytest.fixture
def ensure_exchanges(mesh, people):
    subjects = people.convert(people.registry(limit=3), "resident-registry", "child-allowance")
    for s in subjects:
        mesh.client("MUNI/012084/child-allowance").query(
            "MUNI/012084/resident-registry", "person", s, ["status"], "child-allowance-eligibility"
        )
