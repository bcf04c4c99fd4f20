"""The household's head (世帯主): a stable key for the household, the same in the per-subject and the bulk answer."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select, update

from publicmesh.agencies import resident_registry
from publicmesh.agencies.resident_registry import HOUSEHOLD, register_birth, register_death, residents
from publicmesh.provider import datasets

KITAMI = "012084"
ATTRIBUTES = ["relation", "household_size", "members", "head"]


def _both(conn, monkeypatch) -> tuple[dict, dict]:
    """Every Kitami subject's household as the lookup and as the bulk scan answer it."""
    everyone = HOUSEHOLD.all_subjects(conn, KITAMI)
    looked = HOUSEHOLD.lookup(conn, KITAMI, everyone, ATTRIBUTES)
    scanned = {row.pop("subject"): row for row in HOUSEHOLD.bulk(conn, KITAMI, None, ATTRIBUTES).to_pylist()}
    for row in looked.values():
        row["_protected"] = bool(row["_protected"])
    return looked, scanned


def _households(conn) -> dict[int, list]:
    r = residents.c
    found: dict[int, list] = {}
    for row in conn.execute(
        select(r.household_no, r.pseudonym, r.relation, r.birth_date, r.status).where(r.tenant == KITAMI)
    ):
        found.setdefault(row.household_no, []).append(row)
    return found


def test_the_head_is_the_registered_head_the_same_for_every_member(stores, monkeypatch):
    with stores["resident-registry"].connect() as conn:
        looked, scanned = _both(conn, monkeypatch)
        households = _households(conn)
    assert looked == scanned
    named = 0
    for members in households.values():
        heads = [m.pseudonym for m in members if m.relation in ("head", "single") and m.status == "resident"]
        answers = {scanned[m.pseudonym]["head"] for m in members}
        assert len(answers) == 1  # one key per household, whoever is asked
        if heads:
            named += 1
            assert answers == {heads[0]}
    assert named > 10
    assert HOUSEHOLD.attribute("head").schema == {"type": "string", "format": "pseudonym"}
    assert "head" in HOUSEHOLD.pseudonym_paths  # the hub converts it into each consumer's pseudonyms


def test_a_newborn_leaves_the_head_and_a_death_hands_it_to_the_oldest(fresh_stores, monkeypatch):
    fresh_stores.seed(400)
    engine = fresh_stores["resident-registry"]
    with engine.connect() as conn:
        households = _households(conn)
        before, _ = _both(conn, monkeypatch)
    family = next(
        ms
        for ms in households.values()
        if len(ms) >= 4
        and sum(m.status == "resident" for m in ms) == len(ms)
        and any(m.relation == "head" for m in ms)
        and any(m.relation == "spouse" for m in ms)
    )
    head = next(m for m in family if m.relation == "head")
    mother = next(m for m in family if m.relation in ("head", "spouse") and m.pseudonym != head.pseudonym)
    child = secrets.token_urlsafe(16)[:22]
    with engine.begin() as conn:
        register_birth(conn, KITAMI, child, mother.pseudonym, "花子", "ハナコ", "Hanako", 2, dt.date(2026, 4, 1))
    with engine.connect() as conn:
        born, scanned = _both(conn, monkeypatch)
    assert born == scanned
    assert born[child]["head"] == head.pseudonym == before[mother.pseudonym]["head"]
    assert born[child]["household_size"] == before[mother.pseudonym]["household_size"] + 1

    # The head dies; the two oldest left share a birth date: the smaller pseudonym heads the household.
    others = sorted((m for m in family if m.pseudonym != head.pseudonym), key=lambda m: (m.birth_date, m.pseudonym))
    oldest = min(m.birth_date for m in others)
    twins = sorted([others[0].pseudonym, others[1].pseudonym])
    with engine.begin() as conn:
        register_death(conn, KITAMI, head.pseudonym, dt.date(2026, 5, 1))
        conn.execute(
            update(residents)
            .where(residents.c.tenant == KITAMI, residents.c.pseudonym.in_(twins))
            .values(birth_date=oldest)
        )
    with engine.connect() as conn:
        after, scanned = _both(conn, monkeypatch)
        monkeypatch.setattr(datasets, "SCAN_OVER", 0)
        monkeypatch.setattr(resident_registry, "SCAN_OVER", 0)
        listed = HOUSEHOLD.bulk(conn, KITAMI, [child, head.pseudonym], ATTRIBUTES).to_pylist()
    assert after == scanned
    assert after[child]["head"] == twins[0] and after[head.pseudonym]["head"] == twins[0]
    assert {row["head"] for row in listed} == {twins[0]}


def test_a_household_with_no_one_registered_has_no_head(fresh_stores, monkeypatch):
    fresh_stores.seed(400)
    engine = fresh_stores["resident-registry"]
    with engine.connect() as conn:
        alone = next(ms[0] for ms in _households(conn).values() if len(ms) == 1 and ms[0].status == "resident")
    with engine.begin() as conn:
        register_death(conn, KITAMI, alone.pseudonym, dt.date(2026, 5, 1))
    with engine.connect() as conn:
        looked, scanned = _both(conn, monkeypatch)
        table = HOUSEHOLD.bulk(conn, KITAMI, None, ATTRIBUTES)
    assert looked[alone.pseudonym]["head"] is None and scanned[alone.pseudonym]["head"] is None
    assert looked[alone.pseudonym]["members"] == []
    assert str(table.schema.field("head").type) == "string"
