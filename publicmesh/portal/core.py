"""The portal's parts, shared by its pages: the hub link, the sessions, the people's stores, the status feed, and
the catalog's titles. Built once, by ``portal.bootstrap``."""

from __future__ import annotations

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from publicmesh.portal.mesh import PortalMesh
from publicmesh.portal.people import People
from publicmesh.portal.sessions import SessionStore
from publicmesh.portal.status_feed import StatusFeed
from publicmesh.settings import Settings


class Portal:
    def __init__(
        self,
        settings: Settings,
        hub_url: str,
        *,
        mesh: PortalMesh,
        sessions: SessionStore,
        people: People,
        audit_key: Ed25519PublicKey,
        status_feed: StatusFeed,
    ):
        self.settings = settings
        self.hub_url = hub_url
        self.mesh = mesh
        self.sessions = sessions
        self.people = people
        self.audit_key = audit_key
        self.status_feed = status_feed
        self._catalog: dict | None = None
        self._titles: dict[str, tuple[str, str]] = {}

    async def name_kana(self, person_ref: str, municipality: str) -> tuple[str, str]:
        """The person's registered name in kana, asked of the resident registry through the hub."""
        found = await self.mesh.self_information(person_ref, municipality, keys=("person",))
        data = found["person"].get("data", {})
        return data.get("family_name_kana", ""), data.get("given_name_kana", "")

    async def catalog(self) -> dict:
        """Attribute titles (ja/en) and schemas by provider system and dataset, from the hub's catalog."""
        if self._catalog is None:
            async with httpx.AsyncClient(timeout=5) as client:
                listing = (await client.get(self.hub_url + "/v1/catalog")).json()
            self._catalog = {}
            for provider in listing:
                self._titles[provider["member"]] = (provider["title_ja"], provider["title_en"])
                system = provider["member"].split("/")[2]
                for d in provider["datasets"]:
                    self._catalog[(system, d["name"])] = {a["name"]: a for a in d["attributes"]}
            async with httpx.AsyncClient(timeout=5) as client:
                for m in (await client.get(self.hub_url + "/v1/members")).json():
                    self._titles.setdefault(m["member"], (m["title_ja"], m["title_en"]))
        return self._catalog

    def member_title(self, member: str, lang: str) -> str:
        ja, en = self._titles.get(member, (member, member))
        return (en if lang == "en" else ja) or member
