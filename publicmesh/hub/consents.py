"""Consent-based exchanges: the hub asks the consent holder (the portal, the person's agent) for the consent
record and binds it to the subject of the query itself.

The portal checks that the record is active, in its window, covers the recipient, dataset and purpose, and
carries the person's signature made with their card's signing key; the hub then checks that the consent is
the subject's own (both pseudonyms converted to the audit domain must agree) before anything is forwarded.
"""

from __future__ import annotations

from publicmesh.hub.ports import MemberDirectory, PseudonymConverter, SignedCalls
from publicmesh.problems import Problem
from publicmesh.protocol.members import AUDIT_DOMAIN, PORTAL, MemberId


class ConsentCheck:
    def __init__(self, directory: MemberDirectory, numbers: PseudonymConverter, outbound: SignedCalls):
        self.directory, self.numbers, self.outbound = directory, numbers, outbound

    async def require(
        self,
        consent_id: str | None,
        consumer: MemberId,
        dataset: str,
        purpose: str,
        audit_subject: str,
        request_id: str,
    ) -> dict:
        """The consent allowing ``consumer`` to receive ``dataset`` ("system/dataset", as the person consented to it)
        about this subject now, or Problem no-consent."""
        if not consent_id:
            raise Problem("no-consent", "this exchange is allowed only with the person's consent: name it in 'consent'")
        holder = self.directory.get(PORTAL)
        if holder is None:
            raise Problem("provider-unavailable", "the consent holder is not an active member")
        answer = await self.outbound.post(
            holder.base_url,
            "/v1/consents/check",
            {"consent": consent_id, "recipient": str(consumer), "dataset": dataset, "purpose": purpose},
            str(PORTAL),
            request_id=request_id,
        )
        if answer.status == 404:
            raise Problem(
                "no-consent",
                f"consent {consent_id} does not allow {consumer} to receive {dataset} "
                f"for {purpose!r} now (unknown, revoked, expired, out of scope or unsigned)",
            )
        if answer.status != 200:
            raise Problem("bad-provider-answer", f"the consent holder answered HTTP {answer.status}")
        found = answer.json()
        converted = await self.numbers.convert(found["person_ref"], PORTAL.pseudonym_domain, (AUDIT_DOMAIN,))
        if converted[AUDIT_DOMAIN] != audit_subject:
            raise Problem("no-consent", f"consent {consent_id} was given by another person")
        return found
