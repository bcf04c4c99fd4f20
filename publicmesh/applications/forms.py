"""Typed fields of an application form (本人入力項目): what the person types because no agency holds it.

An offer's form carries their descriptions under ``typed_fields``; the values the person typed are part of the
signed application content, so the services part reads them back from the stored signature.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import unicodedata

import orjson

MAX_LENGTH = 200
_PATTERNS = {
    "tel": re.compile(r"^\+?[0-9][0-9() -]{5,19}$"),
    "email": re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"),
    "text": re.compile(r"^[^\x00-\x1f\x7f]*$"),
}


class TypedFieldError(ValueError):
    """A typed value the form does not take; ``code`` is missing, invalid or unknown."""

    def __init__(self, field: dict | str, code: str):
        self.field = field if isinstance(field, dict) else {"name": field, "label_ja": field, "label_en": field}
        self.code = code
        super().__init__(f"field {self.field['name']}: {code}")


def descriptions(definition_form: list[dict]) -> list[dict]:
    """The typed fields of a definition's form, as an offer carries them."""
    return [
        {
            "name": f["name"],
            "label_ja": f["label"]["ja"],
            "label_en": f["label"]["en"],
            "type": f["type"],
            "required": bool(f.get("required", False)),
        }
        for f in definition_form
        if f.get("typed")
    ]


def typed_values(form: dict, submitted: dict | None) -> dict[str, str]:
    """The submitted values checked against the form's typed fields and normalised (NFKC, trimmed); blanks left out.
    The portal signs exactly this and the services part rebuilds it, so both call it."""
    submitted = submitted or {}
    if not isinstance(submitted, dict):
        raise TypedFieldError("typed", "invalid")
    fields = form.get("typed_fields") or []
    known = {f["name"] for f in fields}
    for name in submitted:
        if name not in known:
            raise TypedFieldError(str(name)[:64], "unknown")
    out = {}
    for field in fields:
        value = submitted.get(field["name"])
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise TypedFieldError(field, "invalid")
        value = unicodedata.normalize("NFKC", value).strip()
        if not value:
            if field.get("required"):
                raise TypedFieldError(field, "missing")
            continue
        if len(value) > MAX_LENGTH or not _valid(field.get("type", "text"), value):
            raise TypedFieldError(field, "invalid")
        out[field["name"]] = value
    return out


def _valid(kind: str, value: str) -> bool:
    if kind == "date":
        try:
            dt.date.fromisoformat(value)
            return True
        except ValueError:
            return False
    return bool(_PATTERNS.get(kind, _PATTERNS["text"]).match(value))


def signed_typed(signature: str | None) -> dict[str, str]:
    """The typed values of a stored signed application (none for one applied by prior intent)."""
    if not signature:
        return {}
    try:
        content = orjson.loads(base64.b64decode(orjson.loads(signature)["content"]))
    except (KeyError, TypeError, ValueError):
        return {}
    typed = content.get("typed") if isinstance(content, dict) else None
    return typed if isinstance(typed, dict) else {}


def shown(form: dict, typed: dict[str, str]) -> list[dict]:
    """Typed fields with the person's values, shaped like the pre-filled fields (for staff and the person)."""
    return [
        {
            "name": f["name"],
            "label_ja": f["label_ja"],
            "label_en": f["label_en"],
            "format": "text",
            "typed": True,
            "value": typed.get(f["name"]),
        }
        for f in form.get("typed_fields") or []
    ]
