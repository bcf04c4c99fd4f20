"""The household's head (世帯主) through the hub: converted into the consumer's pseudonyms, the same in a query
and in a whole-municipality scan, one key for every member of the household."""

from __future__ import annotations

from publicmesh.agencies.resident_registry import residents

SERVICES = "GOV/digital/services"
REGISTRY = "MUNI/012084/resident-registry"
PURPOSE = "specified-public-benefit:emergency-benefit"


def test_the_head_arrives_under_the_consumers_pseudonyms_in_a_query_and_a_scan(mesh, people):
    scanned = mesh.client(SERVICES).bulk(REGISTRY, "household", None, ["members", "head"], PURPOSE).to_pylist()
    by_subject = {row["subject"]: row for row in scanned}
    families = [
        row for row in scanned if len(row["members"]) >= 2 and any(m["relation"] == "head" for m in row["members"])
    ]
    assert families
    families = families[:5]
    for row in families:  # in the consumer's pseudonyms: the member it was told heads the household
        assert row["head"] == next(m["subject"] for m in row["members"] if m["relation"] == "head")
        assert {by_subject[m["subject"]]["head"] for m in row["members"]} == {row["head"]}
        answer = mesh.client(SERVICES).query(REGISTRY, "household", row["subject"], ["head"], PURPOSE)
        assert answer["data"]["head"] == row["head"]

    # The registry's own heads, converted as the hub converts them, are the heads the consumer sees.
    registry_heads = set(people.registry(where=residents.c.relation.in_(["head", "single"]), limit=100_000))
    seen = people.convert([row["head"] for row in families], "services", "resident-registry")
    assert set(seen) <= registry_heads
