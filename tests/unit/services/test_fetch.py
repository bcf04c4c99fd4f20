"""What a service reads for everyone and what only for the eligible (data minimisation), and the household key."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl
import pytest
import yaml

from publicmesh.problems import PROBLEM_TYPES
from publicmesh.protocol.client import HubError
from publicmesh.services.definition import content_hash, load_definition
from publicmesh.services.fetch import ScanChoices, fetch_details, fetch_municipality, household_key, plan
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
    """Answers bulk queries from a table, and remembers who was asked about; refuses scans of ``refuses_scans`` as
    the hub does when no rule allows one (or with another ``refusal`` status)."""

    def __init__(self, table: pl.DataFrame, refuses_scans=(), refusal: int = 403):
        self.table, self.asked, self.refuses_scans, self.refusal = table, [], set(refuses_scans), refusal

    def bulk(self, provider, dataset, subjects, attributes, purpose):
        """Like MeshClient.bulk: subjects a list or an Arrow array, or None for a scan."""
        subjects = subjects.to_pylist() if hasattr(subjects, "to_pylist") else subjects
        self.asked.append((dataset, subjects, attributes))
        if subjects is None and dataset in self.refuses_scans:
            slug = "not-allowed" if self.refusal == 403 else "provider-unavailable"
            raise HubError(self.refusal, {"type": PROBLEM_TYPES[slug].uri, "detail": "no scan"})
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


def _people() -> pl.DataFrame:
    return pl.DataFrame(
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


def test_every_source_the_hub_lets_be_scanned_is_read_whole_for_everyone_and_by_list_for_the_eligible():
    doc = definition("emergency-benefit")
    client = FakeClient(_people())
    fetch_municipality(client, doc, "012084", attributes=plan(doc, rules_of(doc)).rules)
    asked = {dataset: subjects for dataset, subjects, _ in client.asked}
    assert asked == {"person": None, "household": None, "assessment": None}  # three scans, none waiting for another
    client.asked.clear()
    fetch_municipality(client, doc, "012084", ["b" * 22], {"household": ["relation"]})
    assert client.asked == [("household", ["b" * 22], ["relation"])]  # a list, for a few: no scan tried


def test_a_source_whose_rule_refuses_a_scan_is_listed_and_not_asked_again_in_the_same_publish():
    """The hub decides (its access rule's scan): refused, the source is asked about the first source's subjects, and
    the other municipalities of the publish (sharing its ScanChoices) list it at once."""
    doc = definition("emergency-benefit")
    client = FakeClient(_people(), refuses_scans={"assessment"})
    scans = ScanChoices()
    first = fetch_municipality(client, doc, "012084", attributes=plan(doc, rules_of(doc)).rules, scans=scans)
    assert [(dataset, subjects) for dataset, subjects, _ in client.asked if dataset == "assessment"] == [
        ("assessment", None),
        ("assessment", ["a" * 22, "b" * 22]),
    ]
    assert first["tax.income"].to_list() == [1, 2]
    client.asked.clear()
    fetch_municipality(client, doc, "012085", attributes=plan(doc, rules_of(doc)).rules, scans=scans)
    assert {dataset: subjects for dataset, subjects, _ in client.asked} == {
        "person": None,
        "household": None,
        "assessment": ["a" * 22, "b" * 22],
    }


def test_a_scan_refused_for_another_reason_is_not_taken_for_a_rule():
    doc = definition("emergency-benefit")
    client = FakeClient(_people(), refuses_scans={"assessment"}, refusal=503)
    scans = ScanChoices()
    with pytest.raises(HubError):
        fetch_municipality(client, doc, "012084", attributes=plan(doc, rules_of(doc)).rules, scans=scans)
    assert scans.tries("tax")


def test_a_scan_key_in_a_definition_is_accepted_ignored_and_warned_about(caplog):
    text = (DEFINITIONS / "emergency-benefit.yaml").read_text(encoding="utf-8")
    marked = text.replace("    dataset: assessment\n", "    dataset: assessment\n    scan: false\n", 1)
    assert marked != text
    with caplog.at_level(logging.WARNING, logger="publicmesh.services.definition"):
        loaded = load_definition(marked, name="marked.yaml")
    assert content_hash(loaded) == content_hash(load_definition(text))  # nothing of it is kept
    assert any("marked.yaml" in r.getMessage() and "scan" in r.getMessage() for r in caplog.records)
