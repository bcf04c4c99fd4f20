"""The portal as a mesh member: reads a person's own data and exchange records through the hub, signed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from cryptography import x509

from publicmesh.problems import Problem
from publicmesh.protocol.ca import read_private_key
from publicmesh.protocol.members import HUB, PORTAL
from publicmesh.protocol.outbound import Outbound
from publicmesh.protocol.signatures import Signer, Verifier
from publicmesh.protocol.trust import certificate_header
from publicmesh.settings import Settings

PURPOSE = "self-information"


@dataclass(frozen=True)
class Source:
    """One place where government holds data about a person."""

    key: str
    provider: str  # may contain {code}: the person's municipality
    dataset: str
    attributes: tuple[str, ...]


SOURCES = (
    Source(
        "person",
        "MUNI/{code}/resident-registry",
        "person",
        ("family_name", "given_name", "family_name_kana", "given_name_kana", "sex", "birth_date", "status"),
    ),
    Source("address", "MUNI/{code}/resident-registry", "address", ("postal_code", "address")),
    Source("household", "MUNI/{code}/resident-registry", "household", ("relation", "household_size", "members")),
    Source(
        "local_tax",
        "MUNI/{code}/local-tax",
        "assessment",
        ("fiscal_year", "income", "taxable_income", "municipal_tax", "prefectural_tax", "tax_exempt"),
    ),
    Source("national_tax", "GOV/nta/national-tax", "income", ("tax_year", "income", "taxable_income", "income_tax")),
    Source("pension", "GOV/jps/pension", "pension", ("kind", "status", "monthly_amount")),
    Source("health_insurance", "GOV/mhlw/health-insurance", "coverage", ("insurer", "dependent", "status")),
    Source(
        "employment_insurance", "GOV/mhlw/employment-insurance", "insured", ("status", "employer_code", "insured_since")
    ),
    Source(
        "child_allowance",
        "MUNI/{code}/child-allowance",
        "recipient",
        ("status", "eligible_children", "monthly_amount", "since"),
    ),
)


SERVICES = "GOV/digital/services"


class PortalMesh:
    def __init__(self, settings: Settings, hub_url: str):
        keys = settings.keys_dir / "members"
        hub_key = x509.load_pem_x509_certificate((keys / f"{HUB.file_stem}.pem").read_bytes()).public_key()
        self.hub_url = hub_url
        self.outbound = Outbound(
            Signer(str(PORTAL), read_private_key(keys / f"{PORTAL.file_stem}.key")),
            certificate_header((keys / f"{PORTAL.file_stem}.pem").read_text()),
            Verifier(lambda kid: hub_key if kid == str(HUB) else None, 300),
            settings.provider_timeout_s + 1,
        )

    async def start(self) -> None:
        await self.outbound.start()

    async def close(self) -> None:
        await self.outbound.close()

    async def _query(self, source: Source, subject: str, municipality: str) -> dict:
        provider = source.provider.replace("{code}", municipality)
        try:
            answer = await self.outbound.post(
                self.hub_url,
                "/v1/query",
                {
                    "provider": provider,
                    "dataset": source.dataset,
                    "subject": subject,
                    "attributes": list(source.attributes),
                    "purpose": PURPOSE,
                },
                str(HUB),
            )
        except Problem as problem:
            return {"state": "unavailable", "detail": problem.detail}
        doc = answer.json()
        if answer.status == 404:
            return {"state": "none"}
        if answer.status != 200:
            return {"state": "unavailable", "detail": doc.get("detail", "")}
        return {"state": "ok", "data": doc["data"], "provider": provider, "audit_record": doc["audit_record"]}

    async def self_information(
        self, subject: str, municipality: str, keys: tuple[str, ...] | None = None
    ) -> dict[str, dict]:
        """Every source (or those named) at once: one hub exchange per source, each audited under the person."""
        chosen = [s for s in SOURCES if keys is None or s.key in keys]
        results = await asyncio.gather(*(self._query(s, subject, municipality) for s in chosen))
        return {s.key: r for s, r in zip(chosen, results)}

    async def benefits(self, subject: str) -> dict:
        """The person's offers (benefits they can receive) and applications, from the services part via the hub."""
        answer = await self.outbound.post(
            self.hub_url,
            "/v1/query",
            {
                "provider": SERVICES,
                "dataset": "applications",
                "subject": subject,
                "attributes": ["offers", "applications"],
                "purpose": PURPOSE,
            },
            str(HUB),
        )
        if answer.status == 404:
            return {"offers": [], "applications": []}
        if answer.status != 200:
            raise Problem("bad-provider-answer", answer.json().get("detail", f"the hub answered {answer.status}"))
        return answer.json()["data"]

    async def submit(self, subject: str, payload: dict) -> dict:
        """A submission (apply, withdraw) to the services part through the hub; refusals keep their reason."""
        answer = await self.outbound.post(
            self.hub_url,
            "/v1/query",
            {
                "provider": SERVICES,
                "dataset": "application",
                "subject": subject,
                "attributes": ["submit"],
                "purpose": "apply",
                "payload": payload,
            },
            str(HUB),
        )
        doc = answer.json()
        if answer.status != 200:
            raise Problem("submission-refused", doc.get("detail", f"the hub answered {answer.status}"))
        return doc["data"]

    async def exchange_records(self, subject: str, before: int | None = None, limit: int = 50) -> dict:
        answer = await self.outbound.post(
            self.hub_url, "/v1/audit/records", {"subject": subject, "limit": limit, "before": before}, str(HUB)
        )
        if answer.status != 200:
            raise Problem("bad-provider-answer", f"the hub answered {answer.status}")
        return answer.json()
