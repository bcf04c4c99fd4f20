"""The API catalog: each provider's datasets, attributes, JSON schemas and OpenAPI (like X-Road's listMethods)."""

from __future__ import annotations

import asyncio

import aiohttp

from publicmesh.hub.registry import Directory
from publicmesh.hub.rules import RuleBook
from publicmesh.problems import Problem
from publicmesh.protocol.members import MemberId


class Catalog:
    """Datasets as each node publishes them, fetched once per node and kept."""

    def __init__(self, directory: Directory, rules: RuleBook, timeout_s: float = 2.0):
        self._directory = directory
        self._rules = rules
        self._timeout = timeout_s
        self._by_url: dict[str, dict] = {}

    async def warm(self) -> None:
        """Fetch every node's catalog in the background, so the first query does not pay for it."""
        urls = {m.base_url for m in self._directory.members.values() if m.base_url and m.id.member_class != "MESH"}
        for _ in range(60):  # nodes start after the hub; stop trying after a minute and fetch on demand
            for url in urls - self._by_url.keys():
                try:
                    await self.node(url)
                except Problem:
                    pass
            if urls <= self._by_url.keys():
                return
            await asyncio.sleep(1)

    async def node(self, base_url: str) -> dict:
        if base_url not in self._by_url:
            try:
                async with aiohttp.ClientSession() as session:
                    async with session.get(
                        base_url + "/v1/datasets", timeout=aiohttp.ClientTimeout(total=self._timeout)
                    ) as r:
                        r.raise_for_status()
                        self._by_url[base_url] = await r.json()
            except TimeoutError:
                raise Problem(
                    "provider-timeout", f"the catalog of {base_url} did not come within {self._timeout} s"
                ) from None
            except aiohttp.ClientError as exc:
                raise Problem("provider-unavailable", f"catalog of {base_url}: {type(exc).__name__}") from None
        return self._by_url[base_url]

    async def dataset(self, member: MemberId, name: str) -> dict:
        found = self._directory.get(member)
        if found is None:
            raise Problem("unknown-member", f"{member} is not an active member")
        for dataset in (await self.node(found.base_url))["datasets"]:
            if dataset["name"] == name:
                return dataset
        raise Problem("unknown-dataset", f"{member} publishes no dataset {name!r}")

    async def listing(self, caller: MemberId | None) -> list[dict]:
        """Every provider member with its datasets, and what ``caller`` may use of each."""
        out = []
        for member in self._directory.members.values():
            if member.id.member_class == "MESH" or not member.active:
                continue
            try:
                node = await self.node(member.base_url)
            except Problem:
                node = {"datasets": []}
            datasets = []
            for d in node.get("datasets", []):
                allowed = sorted(
                    {
                        (r.affair, a)
                        for r in self._rules.rules
                        if caller and r.dataset == d["name"] and r.allows(caller, member.id)
                        for a in r.attributes
                    }
                )
                datasets.append({**d, "allowed": [{"affair": f, "attribute": a} for f, a in allowed]})
            out.append(
                {
                    "member": str(member.id),
                    "title_ja": member.title_ja,
                    "title_en": member.title_en,
                    "status": member.status,
                    "datasets": datasets,
                }
            )
        return out

    async def openapi(self, member: MemberId, name: str) -> dict:
        """The OpenAPI document of one dataset as reached through the hub."""
        dataset = await self.dataset(member, name)
        return {
            "openapi": "3.1.0",
            "info": {"title": f"{member} — {dataset['title_en']} ({dataset['title_ja']})", "version": "1"},
            "paths": {
                "/v1/query": {
                    "post": {
                        "summary": f"Query {name} of {member} through the hub",
                        "requestBody": {
                            "required": True,
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Query"},
                                    "example": {
                                        "provider": str(member),
                                        "dataset": name,
                                        "subject": "cdwN50YIflIJCf3lcEuNgw",
                                        "attributes": [a["name"] for a in dataset["attributes"]][:3],
                                        "purpose": "…",
                                    },
                                }
                            },
                        },
                        "responses": {
                            "200": {
                                "description": "Signed answer",
                                "content": {
                                    "application/json": {
                                        "schema": {
                                            "type": "object",
                                            "properties": {
                                                "data": {"$ref": "#/components/schemas/Data"},
                                                "audit_record": {"type": "integer"},
                                            },
                                        }
                                    }
                                },
                            },
                            "403": {
                                "description": "No access rule allows it",
                                "content": {"application/problem+json": {}},
                            },
                            "404": {"description": "Unknown subject", "content": {"application/problem+json": {}}},
                        },
                        "security": [{"httpMessageSignature": []}],
                    }
                }
            },
            "components": {
                "schemas": {
                    "Data": dataset["schema"],
                    "Query": {
                        "type": "object",
                        "required": ["provider", "dataset", "subject", "attributes", "purpose"],
                    },
                },
                "securitySchemes": {
                    "httpMessageSignature": {
                        "type": "apiKey",
                        "in": "header",
                        "name": "Signature",
                        "description": "RFC 9421 Ed25519 signature by a member key certified by the mesh CA",
                    }
                },
            },
        }
