"""Births for tests: the resident registry enrols a newborn with the number service (a signed member call) and
registers the birth in its own store, which sends the 'birth' event through the hub as a real 出生届 does."""

from __future__ import annotations

import base64
import datetime as dt
import uuid

import httpx
import orjson

from publicmesh.agencies import resident_registry
from publicmesh.protocol.ca import read_private_key
from publicmesh.protocol.signatures import Signer
from publicmesh.settings import Settings
from publicmesh.storage import engine_for


def enrol_newborn(settings: Settings, numbers_url: str, municipality: str = "012084") -> str:
    """The newborn's pseudonym in the registry's domain, from the number service."""
    member = f"MUNI/{municipality}/resident-registry"
    stem = member.replace("/", "_")
    signer = Signer(member, read_private_key(settings.keys_dir / "members" / f"{stem}.key"))
    body = orjson.dumps({"count": 1})
    headers = signer.sign_request("POST", "/v1/enrol", body, uuid.uuid4().hex)
    cert = (settings.keys_dir / "members" / f"{stem}.pem").read_text()
    headers["mesh-certificate"] = base64.b64encode(cert.encode()).decode()
    response = httpx.post(numbers_url + "/v1/enrol", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["pseudonyms"][0]


def register_birth(
    settings: Settings,
    numbers_url: str,
    parent: str,
    given_name: str,
    kana: str,
    romaji: str,
    sex: int,
    municipality: str = "012084",
) -> str:
    """A child born today into ``parent``'s household (registry pseudonyms); returns the child's."""
    child = enrol_newborn(settings, numbers_url, municipality)
    engine = engine_for("resident-registry", settings)
    with engine.begin() as conn:
        resident_registry.register_birth(
            conn, municipality, child, parent, given_name, kana, romaji, sex, dt.date.today()
        )
    engine.dispose()
    return child
