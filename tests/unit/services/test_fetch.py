"""What a service reads for everyone and what only for the eligible (data minimisation), and the household key."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import yaml

from publicmesh.services.fetch import fetch_details, fetch_municipality, household_key, plan
from publicmesh.services.publish import rules_of

DEFINITIONS = Path(__file__).resolve().parents[3] / "publicmesh" / "services" / "definitions"


def definition(name: str) -> dict:
    return yaml.safe_load((DEFINITIONS / f"{name}.yaml").read_text(encoding="utf-8"))


def test_names_are_read_only_for_the_eligible_and_only_what_the_rules_use_for_everyone():
    doc = definition("emergency-benefit")
    fetch = plan(doc, rules_of(doc))
    assert fetch.rules == {"person": ["status"], "household": ["relation", "head"], "tax": ["income"]}
    assert fetch.details == {"person": ["family_name", "given_name"]}
    assert set(fetch.detail_fields) == {"form.head_name"}


def test_a_form_field_that_aggregates_over_the_household_reads_for_everyone():
    doc = definition("emergency-benefit")
    doc["form"].append(
        {"name": "youngest", "label": {"ja": "最年少", "en": "Youngest"}, "source": "household.max(person.birth_date)"}
    )
    fetch = plan(doc, rules_of(doc))
    assert fetch.rules["person"] == ["birth_date", "status"]
    assert "form.youngest" not in fetch.detail_fields


def test_a_household_without_a_head_attribute_is_keyed_by_its_member_lists():
    doc = definition("child-allowance")
    fetch = plan(doc, rules_of(doc))
    assert "members" in fetch.rules["household"] and "relation" in fetch.rules["household"]
    assert fetch.details == {"person": ["family_name", "given_name"]}


def test_a_form_that_reads_nothing_new_needs_no_second_exchange():
    doc = definition("emergency-benefit")
    doc["form"] = [f for f in doc["form"] if f["name"] != "head_name"]
    fetch = plan(doc, rules_of(doc))
    assert fetch.details == {} and fetch.detail_fields == {}
    assert "person" in fetch.rules


class FakeClient:
    """Answers bulk queries from a table, and remembers who was asked about."""

    def __init__(self, table: pl.DataFrame):
        self.table, self.asked = table, []

    def bulk(self, provider, dataset, subjects, attributes, purpose):
        """Like MeshClient.bulk: subjects a list or an Arrow array, or None for a scan."""
        subjects = subjects.to_pylist() if hasattr(subjects, "to_pylist") else subjects
        self.asked.append((dataset, subjects, attributes))
        rows = self.table if subjects is None else self.table.filter(pl.col("subject").is_in(subjects))
        return rows.select("subject", *attributes).with_columns(pl.lit(42).alias("audit_record")).to_arrow()


def test_details_are_asked_for_the_units_alone_and_complete_their_form():
    doc = definition("emergency-benefit")
    compiled = rules_of(doc)
    fetch = plan(doc, compiled)
    people = pl.DataFrame(
        {"subject": ["a", "b", "c"], "family_name": ["山田", "佐藤", "鈴木"], "given_name": ["太郎", "花子", "一郎"]}
    )
    client = FakeClient(people)
    units = pl.DataFrame({"subject": ["b"], "household": ["b"], "person._audit": [7]})
    done = fetch_details(client, doc, "012084", units, fetch, compiled)
    assert client.asked == [("person", ["b"], ["family_name", "given_name"])]
    assert done.row(0, named=True)["form.head_name"] == "佐藤 花子"
    assert done.row(0, named=True)["person.details._audit"] == 42 and done.row(0, named=True)["person._audit"] == 7


def test_the_household_key_is_the_head_the_registry_names_or_from_the_member_lists():
    by_head = pl.DataFrame({"subject": ["a", "b"], "household.head": ["b", None]})
    assert by_head.select(household_key(by_head))["household"].to_list() == ["b", "b"]
    members = [{"subject": "z", "relation": "child"}, {"subject": "y", "relation": "spouse"}]
    by_members = pl.DataFrame({"subject": ["y", "z"], "household.members": [members, members]})
    assert by_members.select(household_key(by_members))["household"].to_list() == ["y", "y"]


def test_a_source_marked_scan_is_read_whole_for_everyone_and_by_list_for_the_eligible():
    doc = definition("emergency-benefit")
    assert doc["data"]["household"].get("scan") and doc["data"]["tax"].get("scan")
    people = pl.DataFrame(
        {
            "subject": ["a" * 22, "b" * 22],
            "status": ["resident", "resident"],
            "relation": ["head", "child"],
            "head": ["a" * 22, "a" * 22],
            "fiscal_year": [2025, 2025],
            "income": [1, 2],
            "tax_exempt": [True, True],
        }
    )
    client = FakeClient(people)
    fetch_municipality(client, doc, "012084", attributes=plan(doc, rules_of(doc)).rules)
    asked = {dataset: subjects for dataset, subjects, _ in client.asked}
    assert asked == {"person": None, "household": None, "assessment": None}  # three scans, none waiting for another
    client.asked.clear()
    del doc["data"]["tax"]["scan"]  # not marked: the tax office is asked about the registry's residents only
    fetch_municipality(client, doc, "012084", attributes=plan(doc, rules_of(doc)).rules)
    asked = {dataset: subjects for dataset, subjects, _ in client.asked}
    assert asked["household"] is None and sorted(asked["assessment"]) == ["a" * 22, "b" * 22]
    client.asked.clear()
    fetch_municipality(client, doc, "012084", ["b" * 22], {"household": ["relation"]})
    assert client.asked[0][:2] == ("household", ["b" * 22])  # a list, for a few
