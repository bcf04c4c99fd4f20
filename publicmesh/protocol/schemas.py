"""The hub's public request and answer bodies (documented in its OpenAPI)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Per bulk request; clients split larger lists. The residents of the largest municipality (Yokohama, 3.77 million) go
# in one: the provider then reads its municipality once, not once per part.
BULK_MAX_SUBJECTS = 4_000_000
BULK_MAX_BODY = 128  # bulk bodies (an Arrow column of BULK_MAX_SUBJECTS pseudonyms) up to this many max_body_bytes
PSEUDONYM = Field(
    min_length=22,
    max_length=22,
    pattern=r"^[A-Za-z0-9_-]{22}$",
    description="The subject under the consumer's own pseudonym (機関別符号)",
)


class QueryRequest(BaseModel):
    """情報照会: one subject, one provider dataset, the attributes the affair needs."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "provider": "MUNI/012084/resident-registry",
                    "dataset": "household",
                    "subject": "cdwN50YIflIJCf3lcEuNgw",
                    "attributes": ["relation", "household_size", "members"],
                    "purpose": "child-allowance-eligibility",
                }
            ]
        },
    )

    provider: str = Field(description="Provider member, CLASS/CODE/SYSTEM", examples=["MUNI/012084/resident-registry"])
    dataset: str = Field(max_length=64)
    subject: str = PSEUDONYM
    attributes: list[str] = Field(min_length=1, max_length=64)
    purpose: str = Field(max_length=64, description="The affair (事務) an access rule names")
    legal_basis: str | None = Field(default=None, description="If given, must equal the rule's legal basis")
    payload: dict | None = Field(
        default=None, description="A submission (e.g. a signed application), only where the rule is a write rule"
    )
    consent: str | None = Field(
        default=None, max_length=64, description="The person's consent id, required where the rule's basis is consent"
    )


class BulkRequest(BaseModel):
    """Bulk query: the same affair for many subjects; answered as an Arrow IPC stream."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    dataset: str = Field(max_length=64)
    subjects: list[str] | None = Field(default=None, min_length=1, max_length=BULK_MAX_SUBJECTS)
    scan: bool = Field(
        default=False,
        description="Every subject the provider (one municipality) holds, where a "
        "rule allows a scan; then no subjects are given",
    )
    attributes: list[str] = Field(min_length=1, max_length=64)
    purpose: str = Field(max_length=64)


class Notice(BaseModel):
    """One notice for one person's inbox (プッシュ型のお知らせ); ``key`` makes a resend harmless."""

    model_config = ConfigDict(extra="forbid")

    subject: str = PSEUDONYM
    key: str = Field(max_length=128)
    # not empty: checked by the hub after the caller is authorised (notices_wire.checked), documented here
    title_ja: str = Field(max_length=200, json_schema_extra={"minLength": 1})
    title_en: str = Field(max_length=200, json_schema_extra={"minLength": 1})
    body_ja: str = Field(max_length=4000)
    body_en: str = Field(max_length=4000)
    # a path on the portal: one "/" and then no second one, which would make it a link to another host (//host)
    link: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^/(?:[A-Za-z0-9_.#?=&-][A-Za-z0-9/_.#?=&-]*)?$",
        examples=["/applications/offers/4ac95c59143416b2"],
    )
    category: Literal["service-eligibility", "application-decision", "payout", "account-request"] = Field(
        default="service-eligibility",
        description="What the notice is about, for the inbox to file and filter it: a "
        "service the person can receive, a decision on their application, a payment, or a request to register a "
        "public-fund account (お知らせの種別)",
    )


class NotifyRequest(BaseModel):
    """Notices to many people's inboxes, for an affair an access rule names (dataset 'inbox')."""

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(description="The inbox holder, e.g. GOV/digital/portal")
    purpose: str = Field(max_length=64)
    service: str = Field(max_length=64, description="Answer which recipients have a prior intent for this service")
    notices: list[Notice] = Field(min_length=1, max_length=200_000)


class QueryAnswer(BaseModel):
    request_id: str
    audit_record: int = Field(description="Position of this exchange's record in the audit log")
    provider: str
    dataset: str
    subject: str
    data: dict
    withheld: list[str] = Field(description="Attributes withheld because the address is protected")
    rule: str
    legal_basis: str


class RecordsRequest(BaseModel):
    """The exchange records about one person, for that person (asked by the resident portal)."""

    model_config = ConfigDict(extra="forbid")

    subject: str = PSEUDONYM
    limit: int = Field(default=50, ge=1, le=200)
    # below 2^63: a position is a 64-bit integer in every store, and a larger one overflows the query
    before: int | None = Field(default=None, ge=0, lt=2**63, description="Page: positions below this one")
