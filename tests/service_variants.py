"""Test services: the shipped emergency benefit, varied for a few named people, written to a file to publish.

Integration and browser tests publish their own service so that no other test's applications touch theirs.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

DEFINITIONS = Path(__file__).resolve().parents[1] / "publicmesh" / "services" / "definitions"
NAME = 'person.family_name + " " + person.given_name'  # a person's name as the rules see it
PHONE = {
    "name": "phone",
    "label": {"ja": "日中の連絡先", "en": "Daytime phone"},
    "typed": True,
    "type": "tel",
    "required": True,
}


def variant(
    directory: Path,
    service_id: str,
    title: dict,
    *,
    names: list[str],
    amount: str,
    workflow: dict,
    notice_titles: dict | None = None,
    typed_phone: bool = False,
) -> Path:
    """The emergency benefit as ``service_id`` for the residents called ``names``, paying ``amount`` (a rule),
    decided as ``workflow`` says; ``notice_titles`` replaces notices' titles; ``typed_phone`` adds a daytime phone
    number the person types. Returns the file written in ``directory``."""
    doc = yaml.safe_load((DEFINITIONS / "emergency-benefit.yaml").read_text(encoding="utf-8"))
    doc["id"], doc["title"] = service_id, title
    doc["rules"] = {
        "eligible": f'person.status == "resident" and {NAME} in {json.dumps(names, ensure_ascii=False)}',
        "amount": amount,
    }
    doc["workflow"] = workflow
    for kind, notice_title in (notice_titles or {}).items():
        doc["notices"][kind]["title"] = notice_title
    if typed_phone:
        doc["form"].append(PHONE)
    path = directory / f"{service_id}.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path
